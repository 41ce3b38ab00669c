// A real sshd (Debian's openssh-server) as a test's git upstream, the way a real bottle
// reaches GitHub: it accepts one key, and runs git as the user that started it.
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import net from "node:net";
import { userInfo } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { ANY_EXIT, run, start } from "../../lib/proc.ts";
import { signalPid } from "./daemon-process.ts";
import { freePort } from "./ports.ts";

const SSHD = "/usr/sbin/sshd";

/** An ed25519 key pair without passphrase at dir/name and dir/name.pub. */
export async function keypair(dir: string, name: string): Promise<{ key: string; pub: string }> {
  const key = join(dir, name);
  await run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", key]);
  return { key, pub: `${key}.pub` };
}

/** sshd on address:port as this user, accepting only `authorizedKey` (its host key in
 * dir/host_key.pub); stopped with the test. Returns the port. */
export async function startSshd(t: TestContext, dir: string, authorizedKey: string, address: string): Promise<number> {
  const port = await freePort();
  const host = await keypair(dir, "host_key");
  await writeFile(join(dir, "authorized_keys"), authorizedKey);
  const config = join(dir, "sshd_config");
  await writeFile(
    config,
    [
      `ListenAddress ${address}:${port}`,
      `HostKey ${host.key}`,
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      "PidFile none",
      "StrictModes no",
      "UsePAM no",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "PubkeyAuthentication yes",
      "PermitRootLogin prohibit-password",
      "",
    ].join("\n"),
  );
  const sshd = start([SSHD, "-D", "-e", "-f", config], { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  sshd.stderr!.on("data", (b: Buffer) => (log += b.toString()));
  t.after(() => signalPid(sshd, "SIGTERM"));
  for (let i = 0; i < 100; i++) {
    if (sshd.exitCode !== null) throw new Error(`sshd exited ${sshd.exitCode}: ${log}`);
    const up = await new Promise<boolean>((r) => {
      const s = net.connect(port, address);
      s.once("connect", () => {
        s.destroy();
        r(true);
      }).once("error", () => r(false));
    });
    if (up) return port;
    await sleep(50);
  }
  throw new Error(`sshd did not listen on ${port}: ${log}`);
}

/** Why this machine cannot run sshd for a test, or null. */
export async function cannotRunSshd(): Promise<string | null> {
  if (!existsSync(SSHD)) return `${SSHD} is not installed (Debian: apt-get install openssh-server)`;
  // sshd refuses to start without its privilege separation directory when run as root.
  if (userInfo().uid === 0 && !existsSync("/run/sshd")) {
    const r = await run(["mkdir", "-p", "-m", "0755", "/run/sshd"], { expect: ANY_EXIT });
    if (r.code !== 0) return `cannot create /run/sshd: ${r.stderr.trim()}`;
  }
  return null;
}
