// The provisioning script: one root shell inside the bottle that unpacks the staged tar
// (stdin) at / (leaving existing directories' modes alone), then the checkout's own tar
// into the workdir, and runs each step, printing "BB-STEP <name> ok" or "BB-STEP <name> fail
// <why>". Each step checks its own result (the CA is really in the system bundle, the
// gitconfig really rewrites the upstreams, the MCP server is really registered), so a
// silent failure cannot pass. The script is the command line of a `docker exec` or
// `smolvm machine exec`, which every local user can read: it names the bundle's URLs only
// as $BB_GIT_GATE_URL and $BB_SUPERVISE_URL (the container's environment on docker; on
// smolmachines AGENT.bundleEnv, just unpacked), since there they carry the agent key.
import { AGENT } from "../layout.ts";
import type { Plan } from "../plan/schema.ts";
import { skillsDir } from "./stage.ts";

type Ready = Plan & { bundle: NonNullable<Plan["bundle"]>; vm: NonNullable<Plan["vm"]> };

const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

export function provisionScript(plan: Ready, opts: { cwd: boolean }): { script: string; steps: string[] } {
  const asNode = `runuser -u ${AGENT.user} -- env HOME=${AGENT.home} USER=${AGENT.user}`;
  const steps: [string, string][] = [];
  steps.push([
    "ca",
    // Appending to the bundle is what update-ca-certificates would do for one cert, minus
    // its 0.8 s rehash of every cert; the file in ca-certificates/ keeps it on a later update.
    `grep -qF "$(sed -n 2p ${AGENT.caFile})" ${AGENT.caBundle} || cat ${AGENT.caFile} >> ${AGENT.caBundle}; grep -qF "$(sed -n 2p ${AGENT.caFile})" ${AGENT.caBundle} || { echo "bottle CA not in ${AGENT.caBundle}"; exit 1; }`,
  ]);
  const gitChecks = (plan.bottle.git?.upstreams ?? [])
    .filter(() => plan.bundle.agentUrls.gitGate)
    .map((u) => `test "$(${asNode} git ls-remote --get-url https://${u.host}/x/y)" = "$BB_GIT_GATE_URL"/${q(`${u.host}/x/y`)} || { echo "https://${u.host} is not rewritten to git-gate"; exit 1; }`);
  const gu = plan.bottle.gitUser;
  if (gu?.name) gitChecks.push(`test "$(${asNode} git config --global user.name)" = ${q(gu.name)} || { echo "user.name not set"; exit 1; }`);
  if (gu?.email) gitChecks.push(`test "$(${asNode} git config --global user.email)" = ${q(gu.email)} || { echo "user.email not set"; exit 1; }`);
  steps.push(["gitconfig", [`${asNode} git config --global --list >/dev/null`, ...gitChecks].join("\n")]);
  if (plan.files.prompt) steps.push(["prompt", `test -s ${AGENT.promptFile} || { echo "prompt missing"; exit 1; }`]);
  if (plan.agent.skills.length) {
    steps.push(["skills", plan.agent.skills.map((s) => `test -d ${q(`${skillsDir(plan)}/${s.name}`)} || { echo "skill ${s.name} missing"; exit 1; }`).join("\n")]);
  }
  if (plan.bundle.agentUrls.supervise) {
    const mcp = '"$BB_SUPERVISE_URL"';
    if (plan.agent.provider === "claude") {
      steps.push([
        "supervise-mcp",
        `${asNode} claude mcp remove --scope user supervise >/dev/null 2>&1; ${asNode} claude mcp add --transport http --scope user supervise ${mcp} && ${asNode} claude mcp get supervise | grep -qF ${mcp}`,
      ]);
    } else if (plan.agent.provider === "codex") {
      steps.push(["supervise-mcp", `grep -qF ${mcp} ${AGENT.home}/.codex/config.toml || { echo "codex config.toml lacks supervise"; exit 1; }`]);
    } else {
      steps.push(["supervise-mcp", `grep -qF ${mcp} ${AGENT.home}/.bot-bottle/mcp.json`]);
    }
  }
  if (opts.cwd) steps.push(["cwd", `test -d ${AGENT.workdir} && ${asNode} test -w ${AGENT.workdir} || { echo "${AGENT.workdir} missing or not writable by ${AGENT.user}"; exit 1; }`]);

  // A failure's output as one line, its last three lines: parseSteps reads line by line.
  const why = `$(printf '%s' "$out" | tail -n 3 | tr '\\n' ' ')`;
  const body = steps
    .map(([name, cmd]) => `if out=$( (\n${cmd}\n) 2>&1 ); then echo "BB-STEP ${name} ok"; else echo "BB-STEP ${name} fail ${why}"; fi`)
    .join("\n");
  // The checkout after the staging tar: its .git/config (credentials removed) is in the
  // staging tar and not in the checkout's. A linked worktree's git dir has a tar of its own.
  const unpack = (tar: string, into: string, what: string) =>
    `if ! out=$(tar -x --no-same-owner -C ${into} -f ${tar} 2>&1); then echo "BB-STEP unpack fail ${what}: ${why}"; rm -f ${AGENT.checkoutTar} ${AGENT.gitDirTar}; exit 0; fi`;
  const checkout = opts.cwd
    ? `${unpack(AGENT.checkoutTar, AGENT.workdir, "checkout")}
if [ -f ${AGENT.gitDirTar} ]; then ${unpack(AGENT.gitDirTar, `${AGENT.workdir}/.git`, "git dir")}; fi
rm -f ${AGENT.checkoutTar} ${AGENT.gitDirTar}
`
    : "";
  // On smolmachines the bundle's URLs come with the tar (lib/provision/stage.ts).
  const bundleEnv = plan.vm.kind === "smolvm" ? `. ${AGENT.bundleEnv}
` : "";
  const script = `set -u
if ! out=$(tar -x --no-same-owner --no-overwrite-dir -C / -f - 2>&1); then echo "BB-STEP unpack fail ${why}"; exit 0; fi
${checkout}echo "BB-STEP unpack ok"
${bundleEnv}chown -R ${AGENT.user}:${AGENT.user} ${AGENT.home}
${body}
`;
  return { script, steps: ["unpack", ...steps.map(([n]) => n)] };
}

interface StepResult {
  name: string;
  ok: boolean;
  detail: string | null;
}

/** Parse the script's output; a step that printed nothing is a failure. */
export function parseSteps(output: string, expected: string[]): StepResult[] {
  const seen = new Map<string, StepResult>();
  for (const line of output.split("\n")) {
    const m = /^BB-STEP (\S+) (ok|fail)(?: (.*))?$/.exec(line.trim());
    if (m) seen.set(m[1]!, { name: m[1]!, ok: m[2] === "ok", detail: m[3]?.trim() || null });
  }
  return expected.map((name) => seen.get(name) ?? { name, ok: false, detail: "did not run" });
}
