// Is a bottle's agent up? Asked before something would replace it from under its session
// (bb-prepare --rebuild); a backend that cannot answer counts as "not up", as the start
// flow's own check (`bb-vm exec -- true` failing) does.
import { inspectContainer } from "../docker/index.ts";
import { log } from "../log.ts";
import type { Plan } from "../plan/schema.ts";
import { openSmolvm } from "../smolvm/driver.ts";

export async function agentRunning(plan: Plan): Promise<boolean> {
  const vm = plan.vm;
  if (!vm) return false;
  try {
    // By the id bb-vm recorded where there is one: the name may be another root's bottle now.
    if (vm.kind === "docker") return (await inspectContainer(vm.id ?? vm.name))?.state.running ?? false;
    return (await (await openSmolvm()).status(vm.name)).state === "running";
  } catch (e) {
    log.debug(`cannot tell whether ${vm.name} runs: ${(e as Error).message}`);
    return false;
  }
}
