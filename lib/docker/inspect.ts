// Reading docker's view of a container or image: a typed subset of `docker inspect`
// (validated, so a changed docker fails here with a clear message rather than later with
// undefined), and the host port docker picked for a published container port.
import { z } from "zod/v3";
import { BbError } from "../errors.ts";
import { boundedDocker, failure, isNoSuch } from "./cmd.ts";

const RawContainer = z.object({
  Id: z.string(),
  Name: z.string(),
  Image: z.string(),
  Created: z.string(),
  Config: z.object({
    Image: z.string(),
    Env: z.array(z.string()).nullable().optional(),
    Labels: z.record(z.string(), z.string()).nullable().optional(),
    User: z.string().optional(),
  }),
  State: z.object({
    Status: z.string(),
    Running: z.boolean(),
    ExitCode: z.number(),
    Pid: z.number(),
    StartedAt: z.string(),
    FinishedAt: z.string(),
    OOMKilled: z.boolean().optional(),
  }),
  NetworkSettings: z.object({
    Networks: z
      .record(
        z.string(),
        z.object({
          NetworkID: z.string(),
          IPAddress: z.string(),
          Aliases: z.array(z.string()).nullable().optional(),
        }),
      )
      .nullable()
      .optional(),
    Ports: z
      .record(z.string(), z.array(z.object({ HostIp: z.string(), HostPort: z.string() })).nullable())
      .nullable()
      .optional(),
  }),
});

interface ContainerInfo {
  id: string;
  name: string;
  /** The image reference it was started from, and the image ID it resolved to. */
  image: string;
  imageId: string;
  created: string;
  labels: Record<string, string>;
  env: Record<string, string>;
  user: string;
  state: { status: string; running: boolean; exitCode: number; pid: number; startedAt: string; finishedAt: string; oomKilled: boolean };
  /** By network name. */
  networks: Record<string, { id: string; ipAddress: string; aliases: string[] }>;
  /** "8888/tcp" -> host bindings (empty when not published). */
  ports: Record<string, { hostIp: string; hostPort: number }[]>;
}

/** Inspect one container; null when it does not exist. */
export async function inspectContainer(name: string): Promise<ContainerInfo | null> {
  const r = await boundedDocker(["container", "inspect", name], { expect: [0, 1] });
  if (r.code !== 0) {
    if (isNoSuch(r.stderr)) return null;
    throw failure(r, `Cannot inspect container ${name}`);
  }
  const parsed = z.array(RawContainer).length(1).safeParse(JSON.parse(r.stdout));
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new BbError("DOCKER", `Unexpected docker inspect output for ${name}: ${issue.path.map(String).join(".")}: ${issue.message}`);
  }
  const c = parsed.data[0]!;
  const env: Record<string, string> = {};
  for (const kv of c.Config.Env ?? []) {
    const i = kv.indexOf("=");
    if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  const networks: ContainerInfo["networks"] = {};
  for (const [net, n] of Object.entries(c.NetworkSettings.Networks ?? {})) {
    networks[net] = { id: n.NetworkID, ipAddress: n.IPAddress, aliases: n.Aliases ?? [] };
  }
  const ports: ContainerInfo["ports"] = {};
  for (const [port, bindings] of Object.entries(c.NetworkSettings.Ports ?? {})) {
    ports[port] = (bindings ?? []).map((b) => ({ hostIp: b.HostIp, hostPort: Number(b.HostPort) }));
  }
  return {
    id: c.Id,
    name: c.Name.replace(/^\//, ""),
    image: c.Config.Image,
    imageId: c.Image,
    created: c.Created,
    labels: c.Config.Labels ?? {},
    env,
    user: c.Config.User ?? "",
    state: {
      status: c.State.Status,
      running: c.State.Running,
      exitCode: c.State.ExitCode,
      pid: c.State.Pid,
      startedAt: c.State.StartedAt,
      finishedAt: c.State.FinishedAt,
      oomKilled: c.State.OOMKilled ?? false,
    },
    networks,
    ports,
  };
}

/** The host address and port docker published `containerPort`/tcp on (`docker port`). */
export async function hostPort(container: string, containerPort: number): Promise<{ host: string; port: number }> {
  const what = `Cannot find the host port of ${container} ${containerPort}/tcp`;
  const r = await boundedDocker(["port", container, `${containerPort}/tcp`], { what });
  // One line per binding: "127.0.0.1:49153" or "[::1]:49153"; the first is the one we asked for.
  const line = r.stdout.split("\n").map((l) => l.trim()).find(Boolean) ?? "";
  const m = /^\[?([^\]]*)\]?:(\d+)$/.exec(line);
  if (!m) throw new BbError("DOCKER", `${what}: unexpected docker port output ${JSON.stringify(r.stdout.trim())}`);
  return { host: m[1]!, port: Number(m[2]) };
}

const RawImage = z.object({
  Id: z.string(),
  RepoTags: z.array(z.string()).nullable().optional(),
  Created: z.string(),
  Size: z.number(),
  Architecture: z.string().optional(),
  Config: z.object({ Labels: z.record(z.string(), z.string()).nullable().optional() }).nullable().optional(),
});

interface ImageInfo {
  id: string;
  tags: string[];
  created: string;
  size: number;
  architecture: string;
  labels: Record<string, string>;
}

/** Inspect a local image; null when it is not present (nothing is pulled). */
export async function inspectImage(ref: string): Promise<ImageInfo | null> {
  const r = await boundedDocker(["image", "inspect", ref], { expect: [0, 1] });
  if (r.code !== 0) {
    if (isNoSuch(r.stderr)) return null;
    throw failure(r, `Cannot inspect image ${ref}`);
  }
  const parsed = z.array(RawImage).length(1).safeParse(JSON.parse(r.stdout));
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new BbError("DOCKER", `Unexpected docker image inspect output for ${ref}: ${issue.path.map(String).join(".")}: ${issue.message}`);
  }
  const i = parsed.data[0]!;
  return {
    id: i.Id,
    tags: i.RepoTags ?? [],
    created: i.Created,
    size: i.Size,
    architecture: i.Architecture ?? "",
    labels: i.Config?.Labels ?? {},
  };
}

/** The local image ID of `ref` (sha256:...), or null when it is not present. */
export async function imageId(ref: string): Promise<string | null> {
  return (await inspectImage(ref))?.id ?? null;
}
