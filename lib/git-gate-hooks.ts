// The hook scripts bb-prepare writes into a bottle's git-gate/hooks/ dir (mode 0755).
// git-gate runs `git receive-pack` with core.hooksPath pointing there. The policy itself
// lives in the git-gate program: when it starts receive-pack it exports
// BB_GIT_GATE_HOOK, its own command line shell-quoted (node + tsx loader + main.ts from
// source, node + git-gate.js in the bundle image), and the hook runs
// `$BB_GIT_GATE_HOOK hook <name>`. Without that variable the push did not come through
// git-gate, and the hook refuses it.

const preReceive = `#!/bin/sh
# bot-bottle git-gate pre-receive hook (written by bb-prepare; do not edit).
# Enforces the bottle's push policy and forwards the push upstream before any ref moves.
if [ -z "\${BB_GIT_GATE_HOOK:-}" ]; then
  echo "git-gate: push refused: BB_GIT_GATE_HOOK is not set (pushes must go through git-gate)" >&2
  exit 1
fi
eval "exec $BB_GIT_GATE_HOOK hook pre-receive"
`;

/** File name -> content of every hook script. */
export function gitGateHookFiles(): Record<string, string> {
  return { "pre-receive": preReceive };
}
