// Test support: the argv that runs a TypeScript entry point as a real process under the
// same runtime as the test itself (node + tsx, or deno), so a test run under Deno also
// proves the daemons and tools run under Deno.
import { fileURLToPath } from "node:url";
import process from "node:process";

const root = fileURLToPath(new URL("../../../", import.meta.url));

export const REPO_ROOT = root.replace(/\/$/, "");

export function tsArgv(relPath: string, args: string[] = []): string[] {
  const file = `${REPO_ROOT}/${relPath}`;
  if ("Deno" in globalThis) return [process.execPath, "run", "-A", "--no-check", "--quiet", file, ...args];
  return [process.execPath, "--import", `${REPO_ROOT}/node_modules/tsx/dist/loader.mjs`, file, ...args];
}
