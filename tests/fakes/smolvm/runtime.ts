// The stand-in's "VM": a docker container (label bot-bottle.test=1) running the image the
// .smolmachine artifact holds, created at `machine start`, removed at `machine delete`.
// Artifacts are OCI archives (what `pack create` here writes), loaded into docker with
// skopeo unless docker already has that image.
import { createHash } from "node:crypto";
import { availableParallelism } from "node:os";
import process from "node:process";
import { labelArgs, testLabels } from "../../../lib/docker/labels.ts";
import { run } from "../../../lib/proc.ts";
import { FakeError, type MachineRecord } from "./state.ts";

const MACHINE_LABEL = "bot-bottle.fake-smolvm.machine";

/**
 * One key per (HOME, machine), naming its container, image tag and relay folder, so tests
 * that each have their own HOME never collide (and a harness can find what a HOME left).
 */
export function machineKey(machine: string, home = process.env.HOME ?? ""): string {
  return createHash("sha256").update(`${home}\0${machine}`).digest("hex").slice(0, 16);
}

export function containerName(machine: string, home?: string): string {
  return `bb-fake-smolvm-${machineKey(machine, home)}`;
}

export function imageTag(machine: string, home?: string): string {
  return `bb-fake-smolvm:m-${machineKey(machine, home)}`;
}

async function tarEntry(archive: string, path: string): Promise<string> {
  const r = await run(["tar", "-xOf", archive, path], { expect: [0, 2] });
  if (r.code !== 0) throw new FakeError(`'${archive}' is not a .smolmachine artifact (no ${path} inside)`);
  return r.stdout;
}

/** The image ID (config digest) an OCI-archive artifact holds. */
export async function artifactImageId(archive: string): Promise<string> {
  const index = JSON.parse(await tarEntry(archive, "index.json")) as { manifests: { digest: string }[] };
  const digest = index.manifests[0]?.digest;
  if (!digest) throw new FakeError(`'${archive}' holds no image`);
  const manifest = JSON.parse(await tarEntry(archive, `blobs/${digest.replace(":", "/")}`)) as { config: { digest: string } };
  return manifest.config.digest;
}

/** Make the artifact's image available to docker under `tag`. */
export async function loadArtifact(archive: string, tag: string): Promise<void> {
  const id = await artifactImageId(archive);
  const known = await run(["docker", "image", "inspect", "--format", "{{.Id}}", id], { expect: [0, 1] });
  if (known.code === 0) {
    await run(["docker", "tag", id, tag]);
    return;
  }
  await run(["skopeo", "copy", "--quiet", `oci-archive:${archive}`, `docker-daemon:${tag}`]);
}

interface ContainerSpec {
  machine: MachineRecord;
  tag: string;
  /** docker --network value: "none" or "bridge". */
  network: string;
}

export async function startContainer(spec: ContainerSpec): Promise<{ id: string; pid: number }> {
  const name = containerName(spec.machine.name);
  const existing = await run(["docker", "inspect", "--format", "{{.Id}}", name], { expect: [0, 1] });
  if (existing.code === 0) {
    await run(["docker", "start", name]);
  } else {
    await run([
      "docker",
      "run",
      "-d",
      "--init",
      "--name",
      name,
      ...labelArgs(testLabels()),
      "--label",
      `${MACHINE_LABEL}=${spec.machine.name}`,
      "--network",
      spec.network,
      // The guest's size, as a VM of that size would hold it.
      "--cpus",
      String(Math.min(spec.machine.cpus, availableParallelism())),
      "--memory",
      `${spec.machine.memory_mib}m`,
      ...spec.machine.env.flatMap((e) => ["-e", e]),
      "--entrypoint",
      "sleep",
      spec.tag,
      "infinity",
    ]);
  }
  const r = await run(["docker", "inspect", "--format", "{{.Id}} {{.State.Pid}}", name]);
  const [id, pid] = r.stdout.trim().split(" ");
  return { id: id!, pid: Number(pid) };
}

export async function stopContainer(id: string): Promise<void> {
  await run(["docker", "stop", "--time", "1", id], { expect: [0, 1] });
}

export async function removeContainer(id: string | null, tag: string): Promise<void> {
  if (id) await run(["docker", "rm", "-f", id], { expect: [0, 1] });
  await run(["docker", "rmi", tag], { expect: [0, 1] });
}
