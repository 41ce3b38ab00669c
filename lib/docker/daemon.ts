// Is there a Docker engine to talk to? One `docker info` whose failure becomes a message
// telling the user how to install or start one.
import { BbError, isBbError } from "../errors.ts";
import { docker } from "./cmd.ts";

export interface DockerInfo {
  serverVersion: string;
  /** The engine's CPU architecture as docker reports it (x86_64, aarch64). */
  architecture: string;
  operatingSystem: string;
}

const HOW_TO_INSTALL = [
  "Install Docker and try again:",
  "  Linux:  sudo apt-get install docker.io   (or Docker Engine from docs.docker.com)",
  "  macOS:  install Docker Desktop",
].join("\n");

const HOW_TO_START = [
  "Start the Docker engine and try again:",
  "  Linux:  sudo systemctl start docker   (or: sudo dockerd &; CI: scripts/ensure-docker.sh)",
  "  macOS:  open Docker Desktop and wait until it says it is running",
  "If it is running, check that your user may use it (the docker group) and DOCKER_HOST.",
].join("\n");

// One `docker info` per process: a tool asks before its first docker step and again when
// it picks an image's architecture, and each call costs a round trip to the engine.
let cached: Promise<DockerInfo> | undefined;

export function dockerInfo(opts: { timeoutMs?: number } = {}): Promise<DockerInfo> {
  cached ??= queryDockerInfo(opts.timeoutMs);
  cached.catch(() => (cached = undefined)); // a failure is not remembered: the engine may come up
  return cached;
}

async function queryDockerInfo(timeoutMs?: number): Promise<DockerInfo> {
  let out: string;
  try {
    out = (await docker(["info", "--format", "{{json .}}"], { timeoutMs: timeoutMs ?? 20_000 })).stdout;
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    if (/ENOENT/.test(message)) {
      throw new BbError("DOCKER", `Docker is not installed (no docker command on PATH).\n${HOW_TO_INSTALL}`, { cause: e });
    }
    const stderr = isBbError(e) && typeof e.details.stderr === "string" ? e.details.stderr : "";
    const why = (stderr || message).trim().split("\n").find((l) => l.trim()) ?? "";
    throw new BbError("DOCKER", `Cannot reach the Docker engine (${why}).\n${HOW_TO_START}`, { cause: e });
  }
  const info = JSON.parse(out) as Record<string, unknown>;
  const str = (k: string) => (typeof info[k] === "string" ? (info[k] as string) : "");
  // Some client versions exit 0 without a daemon and leave the server fields empty.
  if (!str("ServerVersion")) throw new BbError("DOCKER", `Cannot reach the Docker engine (docker info shows no server).\n${HOW_TO_START}`);
  return { serverVersion: str("ServerVersion"), architecture: str("Architecture"), operatingSystem: str("OperatingSystem") };
}
