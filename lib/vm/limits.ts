// The agent's resource ceilings: what the bottle declares under `limits`, else these
// defaults, the same on both backends.
import type { Limits } from "../plan/schema.ts";

/**
 * Memory (MiB) an agent may use unless its bottle says otherwise: enough for the agent
 * CLI, a language server and a parallel build, while an agent that allocates without end
 * is stopped inside its bottle instead of pushing your machine into swap and its OOM
 * killer. A ceiling, not a reservation, on both backends.
 */
export const AGENT_MEMORY_MIB = 8192;

/** The ceilings to apply; cpus absent means every CPU. */
export function agentLimits(l: Limits): { memoryMiB: number; cpus?: number } {
  return { memoryMiB: l.memoryMiB ?? AGENT_MEMORY_MIB, ...(l.cpus === null ? {} : { cpus: l.cpus }) };
}

/** "memory 8 GiB (the default), every CPU" for the preflight. */
export function describeLimits(l: Limits): string {
  const memory = `memory ${sizeText(l.memoryMiB ?? AGENT_MEMORY_MIB)}${l.memoryMiB === null ? " (the default)" : ""}`;
  const cpus = l.cpus === null ? "every CPU" : `${l.cpus} CPU${l.cpus === 1 ? "" : "s"}`;
  return `${memory}, ${cpus}`;
}

function sizeText(mib: number): string {
  return mib >= 1024 ? `${Number((mib / 1024).toFixed(2))} GiB` : `${mib} MiB`;
}
