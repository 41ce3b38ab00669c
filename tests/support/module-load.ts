// Test support: the argv and environment that run a daemon's main.ts under node (not deno,
// whatever runs the test: these are node's module hooks) with tsx and
// module-load-hooks.mjs, which prints "test-hook: <name> loaded" when a watched module is,
// and secure-context-hook.mjs, which prints SECURE_CONTEXT_MADE at the first SecureContext.
import { REPO_ROOT, TSX_LOADER } from "./daemon-process.ts";

export const loadedLine = (name: string) => `test-hook: ${name} loaded`;
export const SECURE_CONTEXT_MADE = "test-hook: SecureContext made";

/** `watched`: {"<name>": "<part of the module URL>"}. */
export function watchedModuleRun(script: string, args: string[], watched: Record<string, string>): { argv: string[]; env: Record<string, string> } {
  return {
    argv: [
      "node", "--import", TSX_LOADER,
      "--import", `${REPO_ROOT}tests/support/module-load-register.mjs`,
      "--import", `${REPO_ROOT}tests/support/secure-context-hook.mjs`,
      script, ...args,
    ],
    env: { BB_TEST_WATCH_MODULES: JSON.stringify(watched) },
  };
}
