// The hook scripts bb-prepare writes into a bottle's git-gate/hooks dir (mode 0700). The
// gate points its repos' core.hooksPath there; each hook calls back into git-gate, whose
// daemon exports BB_GIT_GATE_HOOK: the command that runs its policy check (the bundled
// dist/sidecar/git-gate.js in the image, tsx + source in host-process tests).
export function gitGateHookFiles(): Record<string, string> {
  return {
    "pre-receive": `#!/bin/sh
# Written by bb-prepare: enforce this bottle's push policy, then forward upstream.
exec $BB_GIT_GATE_HOOK pre-receive "$@"
`,
  };
}
