// Driving the smolmachines start flow (`just run agent=shell backend=smolmachines -- CMD`)
// against the smolvm stand-in, the way a user's terminal would: the flow in its own process
// group (so a test can SIGKILL all of it at once), its stdout read line by line, and its
// stdin held open so the command in the VM can wait for the test before it goes on.
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import type { TestContext } from "node:test";
import * as docker from "../../lib/docker/index.ts";
import { names } from "../../lib/layout.ts";
import { run, start, ANY_EXIT } from "../../lib/proc.ts";
import { fakeSmolvm, type FakeSmolvm } from "../fakes/smolvm/harness.ts";
import { relayDir } from "../fakes/smolvm/relay.ts";
import { containerName } from "../fakes/smolvm/runtime.ts";
import { listMachines } from "../fakes/smolvm/state.ts";
import { bottleResources } from "../support/leftovers.ts";
import { REPO } from "../support/tools.ts";

const JUST = join(REPO, "node_modules", ".bin", "just");

/**
 * The label scope for bb-list and bb-cleanup: this bottle's docker resources only. Other
 * tests on this engine label theirs bot-bottle.test=1 too, and a cleanup scoped to that
 * alone would reap their half-started bottles.
 */
const scope = (slug: string) => ["--filter-label", `${docker.LABEL.test}=1`, "--filter-label", `${docker.LABEL.slug}=${slug}`];

export interface Flow {
  fake: FakeSmolvm;
  /** Every host-side command line seen while the flow ran (see watchArgv). */
  argvSeen(): string[];
  stateRoot: string;
  /** The flow's TMPDIR. */
  tmp: string;
  /** Environment for every bb-* tool that must see the same smolvm and state. */
  env: Record<string, string | undefined>;
  /** Resolves with the first stdout line matching `re` (rejects when the flow exits first). */
  line(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Write a line to the command in the VM, or end its stdin. */
  send(text: string): void;
  end(): void;
  /** The flow's exit code (128+n for a signal). */
  exit: Promise<number>;
  stdout(): string;
  stderr(): string;
  /** SIGKILL the whole process group: just, flow.sh, the bb-* tools, the stand-in. */
  kill(): Promise<void>;
  /** The bottle's slug, read from the state dir once bb-prepare has written it. */
  slug(): string;
}

interface FlowOptions {
  version: string;
  /** Shared .smolmachine cache, so only the first start of a suite packs. */
  cacheDir: string;
  command: string[];
  /** Extra `key=value` words for the recipe (cwd=DIR). */
  words?: string[];
}

/** Pids (zombies included) whose process group is `pgid`, from /proc. */
function groupMembers(pgid: number): number[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        const stat = readFileSync(`/proc/${d}/stat`, "utf8");
        return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2] === String(pgid);
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** Complete lines only: a line still being written must not match early. */
const lines = (text: string) => text.split("\n").slice(0, -1);

/** The host tools bot-bottle (and the stand-in) run whose command lines the argv watch
 * records as they are called; smolvm's are the stand-in's own log. */
const WATCHED = ["docker", "sqlite3", "skopeo", "tar", "git", "socat", "nsenter"];

/**
 * What every local user could read of the flow's processes' command lines: a PATH shim
 * for each WATCHED tool logs every argv it is called with, and /proc is read every 20 ms
 * for the command line of each process in this PID namespace (the bundle's and the
 * stand-in VM's are in their containers', as a real VM's are out of the host's sight).
 * A sweep can miss a process shorter than its period; the shims and the stand-in's log
 * miss none.
 */
function watchArgv(): { env: (path: string) => Record<string, string>; seen: () => string[]; stop: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "bb-smol-argv-"));
  const log = join(dir, "argv.log");
  writeFileSync(log, "");
  const realPath = process.env.PATH ?? "";
  for (const name of WATCHED) {
    const real = realPath.split(":").map((d) => join(d || ".", name)).find((f) => existsSync(f));
    if (!real) continue;
    writeFileSync(join(dir, name), `#!/bin/sh\nprintf '%s\\n' "$0 $*" >> '${log}'\nexec '${real}' "$@"\n`);
    chmodSync(join(dir, name), 0o755);
  }
  const ns = (pid: string) => {
    try {
      return readlinkSync(`/proc/${pid}/ns/pid`);
    } catch {
      return null;
    }
  };
  const own = ns("self");
  const swept = new Set<string>();
  const sweep = () => {
    for (const pid of readdirSync("/proc")) {
      if (!/^\d+$/.test(pid) || ns(pid) !== own) continue;
      try {
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
        if (cmdline) swept.add(cmdline.replaceAll("\0", " "));
      } catch {
        // gone already
      }
    }
  };
  const timer = own ? setInterval(sweep, 20) : undefined;
  return {
    env: (path) => ({ PATH: `${dir}:${path}` }),
    seen: () => [...(existsSync(log) ? readFileSync(log, "utf8").split("\n").filter(Boolean) : []), ...swept],
    stop: () => {
      clearInterval(timer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Start the flow; the test's after-hooks kill it and remove whatever it left. */
export async function startFlow(t: TestContext, opts: FlowOptions): Promise<Flow> {
  // The flow's own TMPDIR: its work dir, the provisioning tar and the stand-in's relay
  // sockets land there, where the test can see what is left and remove it.
  const tmp = mkdtempSync(join(tmpdir(), "bb-smol-tmp-"));
  const fake = fakeSmolvm(opts.version, { tmp });
  const stateRoot = mkdtempSync(join(tmpdir(), "bb-smol-state-"));
  const argv = watchArgv();
  const env = { ...fake.env, ...argv.env(fake.env.PATH!), BB_STATE_DIR: stateRoot, BB_CACHE_DIR: opts.cacheDir, BB_FROM_SOURCE: "1", BB_TEST_LABEL: "1", NO_COLOR: "1" };
  // setsid: a child of this process is no group leader, so setsid execs in place and the
  // flow's pid is its process group id.
  const child = start(["setsid", JUST, "run", "agent=shell", "backend=smolmachines", ...(opts.words ?? []), "--", ...opts.command], {
    cwd: REPO,
    env,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  const waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  child.stdout!.setEncoding("utf8").on("data", (d: string) => {
    out += d;
    for (const w of [...waiters]) {
      const m = lines(out).map((l) => w.re.exec(l)).find(Boolean);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  child.stderr!.setEncoding("utf8").on("data", (d: string) => void (err += d));
  child.stdin!.on("error", () => {});
  const exit = new Promise<number>((resolve) => child.on("close", (code, sig) => resolve(code ?? (sig === "SIGKILL" ? 137 : 128))));
  let exited = false;
  void exit.then(() => (exited = true));
  const kill = async () => {
    if (!exited) await run(["kill", "-KILL", "--", `-${child.pid}`], { expect: [0, 1] });
    await exit;
    // Orphaned members (flow.sh, once just is gone) stay zombies until init reaps them, and
    // a zombie owner still counts as alive (kill -0 succeeds): wait until they are reaped.
    const end = Date.now() + 10_000;
    while (groupMembers(child.pid!).length && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  };
  const flow: Flow = {
    fake,
    argvSeen: () => [...argv.seen(), ...fake.calls().map((c) => `smolvm ${c.argv.join(" ")}`)],
    stateRoot,
    tmp,
    env,
    line: (re, timeoutMs = 120_000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no stdout line matching ${re} within ${timeoutMs} ms\nstdout:\n${out}\nstderr:\n${err}`)), timeoutMs);
        const done = (m: RegExpMatchArray) => (clearTimeout(timer), resolve(m));
        const m = lines(out).map((l) => re.exec(l)).find(Boolean);
        if (m) return done(m);
        waiters.push({ re, resolve: done });
        void exit.then((code) => (clearTimeout(timer), reject(new Error(`the flow exited ${code} before printing ${re}\nstdout:\n${out}\nstderr:\n${err}`))));
      }),
    send: (text) => void child.stdin!.write(text),
    end: () => void child.stdin!.end(),
    exit,
    stdout: () => out,
    stderr: () => err,
    kill,
    slug: () => {
      const dirs = existsSync(join(stateRoot, "bottles")) ? readdirSync(join(stateRoot, "bottles")) : [];
      if (dirs.length !== 1) throw new Error(`expected one bottle under ${stateRoot}, found ${JSON.stringify(dirs)}`);
      return dirs[0]!;
    },
  };
  t.after(async () => {
    await kill();
    argv.stop();
    await removeLeftovers(flow);
    rmSync(stateRoot, { recursive: true, force: true });
    rmSync(tmp, { recursive: true, force: true });
  });
  return flow;
}

/** Everything a bottle of this flow might have left, found without bot-bottle's own code. */
export async function leftovers(flow: Flow, slug: string): Promise<string[]> {
  const [{ containers, networks, volumes }, machines] = await Promise.all([bottleResources(slug), listMachines(flow.fake.home).catch(() => [])]);
  const vm = await run(["docker", "ps", "-a", "--format", "{{.Names}}", "--filter", `name=^${containerName(names.machine(slug), flow.fake.home)}$`]);
  return [
    ...containers.map((c) => `container ${c}`),
    ...networks.map((n) => `network ${n}`),
    ...volumes.map((v) => `volume ${v}`),
    ...machines.map((m) => `machine ${m.name}`),
    ...(vm.stdout.trim() ? [`vm container ${vm.stdout.trim()}`] : []),
    ...(existsSync(join(flow.stateRoot, "bottles", slug)) ? [`state dir ${slug}`] : []),
    ...(existsSync(relayDir(names.machine(slug), flow.fake.home, flow.tmp)) ? ["relay dir"] : []),
    // tsx keeps its compile cache in TMPDIR (tools run from source): not the flow's.
    ...readdirSync(flow.tmp)
      .filter((f) => !f.startsWith("tsx-"))
      .map((f) => `tmp ${f}`),
  ];
}

async function removeLeftovers(flow: Flow): Promise<void> {
  let slug: string | null = null;
  try {
    slug = flow.slug();
  } catch {
    // bb-prepare never got far enough to name the bottle
  }
  await flow.fake.cleanup();
  if (!slug) return;
  const byLabel = { [docker.LABEL.slug]: slug };
  for (const c of await docker.listContainers(byLabel)) await docker.removeContainer(c.id);
  for (const n of await docker.listNetworks(byLabel)) await docker.removeNetwork(n.id);
}

/** Run bin/<tool> with the flow's smolvm and state, scoped to its bottle. */
export function tool(flow: Flow, name: string, args: string[]) {
  return run([join(REPO, "bin", name), ...args, "--state-dir", flow.stateRoot, ...scope(flow.slug())], {
    env: flow.env,
    expect: ANY_EXIT,
    timeoutMs: 120_000,
  });
}

/** The stand-in's calls without the `--version` probe each tool starts with. */
export function calls(flow: Flow): string[][] {
  return flow.fake
    .calls()
    .map((c) => c.argv)
    .filter((a) => a[0] !== "--version");
}

/** "machine create", "pack create", ...: what each call was. */
export const verbs = (cs: string[][]) => cs.map((a) => a.slice(0, 2).join(" "));
