// The sidecar image's build context: sidecar-image/Dockerfile and the daemons tsup bundled
// into dist/sidecar/. Only those files go to docker (not the repository with its
// node_modules), and their hash is the image tag.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BbError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { contentTag } from "./tag.ts";

interface SidecarContext {
  dockerfile: string;
  /** dist/sidecar file names, sorted. */
  bundles: string[];
  tag: string;
}

/** Daemons with a source folder (sidecar-image/<name>/main.ts); init is always needed. */
function expectedBundles(root: string): string[] {
  const src = join(root, "sidecar-image");
  const names = new Set(["init"]);
  for (const e of readdirSync(src, { withFileTypes: true })) {
    if (e.isDirectory() && existsSync(join(src, e.name, "main.ts"))) names.add(e.name);
  }
  if (names.has("firewall")) names.add("firewall-scan-worker"); // its large-body scans (tsup.config.ts)
  return [...names].sort();
}

/** Check the inputs and hash them; throws NOT_FOUND saying to build when bundles are missing. */
export function sidecarContext(root: string, logger: Logger): SidecarContext {
  const dockerfile = join(root, "sidecar-image", "Dockerfile");
  if (!existsSync(dockerfile)) throw new BbError("NOT_FOUND", `Cannot build the sidecar image: ${dockerfile} is missing`);
  const dist = join(root, "dist", "sidecar");
  const present = existsSync(dist) ? readdirSync(dist).filter((f) => f.endsWith(".js")).sort() : [];
  const missing = expectedBundles(root).filter((n) => !present.includes(`${n}.js`));
  if (missing.length) {
    throw new BbError(
      "NOT_FOUND",
      `Cannot build the sidecar image: the daemons are not built (missing ${missing.map((n) => `dist/sidecar/${n}.js`).join(", ")}). ` +
        `Run \`npm run build\` in ${root} and try again.`,
      { details: { missing } },
    );
  }
  warnIfStale(root, present.map((f) => join(dist, f)), logger);
  const tag = contentTag([
    { name: "Dockerfile", content: readFileSync(dockerfile) },
    ...present.map((f) => ({ name: `dist/sidecar/${f}`, content: readFileSync(join(dist, f)) })),
  ]);
  return { dockerfile, bundles: present, tag };
}

/** Copy the context into a fresh temp dir (the caller removes it). */
export function assembleSidecarContext(root: string, ctx: SidecarContext): string {
  const dir = mkdtempSync(join(tmpdir(), "bb-sidecar-context-"));
  mkdirSync(join(dir, "dist", "sidecar"), { recursive: true });
  cpSync(ctx.dockerfile, join(dir, "Dockerfile"));
  for (const f of ctx.bundles) cpSync(join(root, "dist", "sidecar", f), join(dir, "dist", "sidecar", f));
  return dir;
}

// A bundle older than the sources it is built from is a build someone forgot; the image
// would run yesterday's daemons. Warn rather than fail: mtimes are only a hint.
function warnIfStale(root: string, bundles: string[], logger: Logger): void {
  const oldestBundle = Math.min(...bundles.map((f) => statSync(f).mtimeMs));
  const newest = newestSource([join(root, "sidecar-image"), join(root, "lib")]);
  if (newest && newest.mtimeMs > oldestBundle) {
    logger.warn(`dist/sidecar is older than ${newest.path}; run \`npm run build\` to bundle the current daemons`);
  }
}

function newestSource(dirs: string[]): { path: string; mtimeMs: number } | null {
  let best: { path: string; mtimeMs: number } | null = null;
  const walk = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== "testdata" && e.name !== "node_modules") walk(p);
      } else if (e.name.endsWith(".ts") && !e.name.endsWith(".test.ts")) {
        const m = statSync(p).mtimeMs;
        if (!best || m > best.mtimeMs) best = { path: p, mtimeMs: m };
      }
    }
  };
  dirs.forEach(walk);
  return best;
}
