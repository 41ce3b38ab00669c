// The real backends: which ones this machine has, and removal through them. A backend whose
// CLI is not installed holds nothing of ours and is skipped with a note; one that is
// installed but cannot be asked is an error the caller weighs (list warns, cleanup refuses:
// it cannot tell what is live).
import * as docker from "../docker/index.ts";
import { BbError } from "../errors.ts";
import { log } from "../log.ts";
import { which } from "../proc.ts";
import { openSmolvm, type Smolvm } from "../smolvm/driver.ts";
import { DOCKER_ENGINE, type DockerSource, type Inventory } from "./collect.ts";
import { removeStateDir, type Remover } from "./remove.ts";

export interface Backends {
  docker: DockerSource | null;
  /** The driver (list reads it, cleanup stops and deletes through it). */
  smolvm: Smolvm | null;
  errors: Inventory["errors"];
}

export async function openBackends(): Promise<Backends> {
  const errors: Inventory["errors"] = [];
  const [hasDocker, hasSmolvm] = await Promise.all([which("docker"), which("smolvm")]);
  if (!hasDocker) log.info("docker is not installed (not on PATH): skipping docker containers and networks");
  // Most hosts have no smolvm at all: say so only with -v, not on every run.
  if (!hasSmolvm) log.debug("smolvm is not installed (not on PATH): skipping smolvm machines");
  let smolvm: Smolvm | null = null;
  if (hasSmolvm) {
    try {
      smolvm = await openSmolvm();
    } catch (e) {
      errors.push({ backend: "smolmachines", message: (e as Error).message });
    }
  }
  return { docker: hasDocker ? DOCKER_ENGINE : null, smolvm, errors };
}

/** Removal through the real docker CLI, smolvm driver and file system. */
export function systemRemover(smolvm: Smolvm | null): Remover {
  const driver = (): Smolvm => {
    // Machines are only ever found through the driver, so one to remove implies a driver.
    if (!smolvm) throw new BbError("SMOLVM", "smolvm is not available to remove a machine");
    return smolvm;
  };
  return {
    stopMachine: (name) => driver().stop(name),
    deleteMachine: (name) => driver().delete(name),
    removeContainer: async (id) => void (await docker.removeContainer(id)),
    removeNetwork: async (id, name) => void (await docker.removeNetwork(id, name)),
    removeVolume: async (name) => void (await docker.removeVolume(name)),
    removeDir: removeStateDir,
  };
}
