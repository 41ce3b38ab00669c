// Bundles every tool (tools/<name>/main.ts -> dist/<name>.js) and every sidecar daemon
// (sidecar-image/<name>/main.ts -> dist/sidecar/<name>.js) into self-contained ESM files:
// the tools run from a checkout without tsx, and the daemons are copied into the bundle
// image without npm (npm cannot reach its registry inside a container build here).
import { existsSync, readdirSync } from "node:fs";
import { defineConfig } from "tsup";

function mains(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const main = `${dir}/${name}/main.ts`;
    if (existsSync(main)) out[name] = main;
  }
  return out;
}

const common = {
  format: ["esm"] as const,
  platform: "node" as const,
  target: "node20",
  bundle: true,
  noExternal: [/.*/],
  splitting: false,
  sourcemap: false,
  // Every tool start parses its whole bundle; dropping whitespace and comments cuts that by
  // a third. Identifiers stay, so a crash's stack trace still names our functions.
  minifyWhitespace: true,
  minifySyntax: true,
  clean: false,
  // CommonJS dependencies call require(); give the ESM bundle one.
  banner: { js: "import { createRequire as __bbCreateRequire } from 'node:module'; const require = __bbCreateRequire(import.meta.url);" },
};

export default defineConfig([
  { ...common, entry: mains("tools"), outDir: "dist" },
  // The bundle image runs Debian bookworm's Node 18.
  // The firewall's scan worker is a file of its own, beside firewall.js (off-thread.ts).
  { ...common, entry: { ...mains("sidecar-image"), "firewall-scan-worker": "sidecar-image/firewall/scan-worker.ts" }, outDir: "dist/sidecar", target: "node18" },
]);
