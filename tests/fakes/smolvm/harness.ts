// Test-side handle on the smolvm stand-in: a private HOME (so its state DB is a fresh
// file), a call log, the environment that puts the stand-in first on PATH, and a cleanup
// that removes whatever machines the test left behind (containers, image tags, relays).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { run } from "../../../lib/proc.ts";
import { stopRelays } from "./relay.ts";
import { containerName, imageTag } from "./runtime.ts";
import { dbPath, listMachines } from "./state.ts";

/** The folder holding the `smolvm` launcher: put it first on PATH. */
export const FAKE_SMOLVM_DIR = fileURLToPath(new URL(".", import.meta.url)).replace(/\/$/, "");

export interface Call {
  argv: string[];
  version: string;
  /** ISO time the stand-in was called. */
  at: string;
  /** Whether the stand-in's stdin was a terminal. */
  stdinTty: boolean;
}

export interface FakeSmolvm {
  version: string;
  home: string;
  log: string;
  /** smolvm's state DB path inside `home` (Linux layout). */
  db: string;
  /** Environment for anything that runs `smolvm`: HOME, PATH, FAKE_SMOLVM_*. */
  env: Record<string, string | undefined>;
  /** Every call so far, in order. */
  calls(): Call[];
  /** Forget the calls so far (e.g. after setup steps a test does not assert on). */
  clearCalls(): void;
  /** Remove leftover machines' containers, image tags and relays; then HOME. Returns what was left. */
  cleanup(): Promise<string[]>;
}

/** `tmp`: a TMPDIR for the stand-in (and whatever else gets `env`), e.g. one a test removes. */
export function fakeSmolvm(version: string, opts: { tmp?: string } = {}): FakeSmolvm {
  const home = mkdtempSync(join(tmpdir(), "bb-fake-smolvm-home-"));
  const log = join(home, "smolvm-calls.jsonl");
  writeFileSync(log, "");
  const env = {
    HOME: home,
    XDG_DATA_HOME: undefined,
    FAKE_SMOLVM_VERSION: version,
    FAKE_SMOLVM_LOG: log,
    PATH: `${FAKE_SMOLVM_DIR}:${process.env.PATH ?? ""}`,
    ...(opts.tmp ? { TMPDIR: opts.tmp } : {}),
  };
  return {
    version,
    home,
    log,
    db: dbPath(home),
    env,
    calls: () =>
      readFileSync(log, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Call),
    clearCalls: () => writeFileSync(log, ""),
    async cleanup() {
      const left: string[] = [];
      let machines: { name: string; container: string | null }[] = [];
      try {
        machines = await listMachines(home);
      } catch {
        // no DB: nothing was created
      }
      for (const m of machines) {
        left.push(m.name);
        stopRelays(m.name, home, opts.tmp);
        await run(["docker", "rm", "-f", m.container ?? containerName(m.name, home)], { expect: [0, 1] });
        await run(["docker", "rmi", imageTag(m.name, home)], { expect: [0, 1] });
      }
      rmSync(home, { recursive: true, force: true });
      return left;
    },
  };
}

/** What `smolvm pack create` would make of a local docker image, without a registry. */
export async function makeArtifact(image: string, path: string): Promise<string> {
  // Uncompressed layers: twice the bytes, a third of the time.
  await run(["skopeo", "copy", "--quiet", "--dest-oci-accept-uncompressed-layers", `docker-daemon:${image}`, `oci-archive:${path}`], { timeoutMs: 120_000 });
  return path;
}
