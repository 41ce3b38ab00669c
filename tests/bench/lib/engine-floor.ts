// The start benchmark's floor: only the docker engine work a bottle needs by the SPEC's
// design, issued straight to docker as concurrently as the engine allows, with no tool,
// readiness wait or provisioning. Two networks (the internal one and the egress one), the
// bundle on both and the agent on the internal one, `exec true` in the agent, then both
// containers and both networks removed. `just run`'s time over this is what our tools
// cost; this floor over a bare `docker run --rm` is what the design costs on this engine.
import { randomBytes } from "node:crypto";
import { ANY_EXIT, run } from "../../../lib/proc.ts";

const docker = (...args: string[]) => run(["docker", ...args], { timeoutMs: 120_000 });

/** One pass; returns its wall time in ms. Whatever it made is removed, also on failure. */
export async function engineFloorOnce(images: { agent: string; sidecar: string }): Promise<number> {
  const id = `bb-bench-floor-${randomBytes(4).toString("hex")}`;
  const [internal, egress, bundle, agent] = ["int", "egress", "bundle", "agent"].map((x) => `${id}-${x}`);
  const t0 = performance.now();
  let removed = false;
  try {
    await Promise.all([docker("network", "create", "--internal", internal!), docker("network", "create", egress!)]);
    await Promise.all([
      // docker run attaches one network; the bundle joins the second with one more call, as bb-bundle does.
      docker("run", "--detach", "--name", bundle!, "--network", egress!, "--entrypoint", "sleep", images.sidecar, "infinity")
        .then(() => docker("network", "connect", internal!, bundle!)),
      docker("run", "--detach", "--name", agent!, "--network", internal!, "--entrypoint", "sleep", images.agent, "infinity"),
    ]);
    await docker("exec", agent!, "true");
    await docker("rm", "--force", bundle!, agent!);
    await docker("network", "rm", internal!, egress!);
    removed = true;
    return performance.now() - t0;
  } finally {
    if (!removed) {
      await run(["docker", "rm", "--force", bundle!, agent!], { expect: ANY_EXIT });
      await run(["docker", "network", "rm", internal!, egress!], { expect: ANY_EXIT });
    }
  }
}
