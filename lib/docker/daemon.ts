// Is there a Docker engine to talk to? One `docker version` whose failure becomes a message
// telling the user how to install or start one. Not `docker info`: that gathers the whole
// engine's state (storage, plugins, counts) and costs 3-4x longer on every start.
import { BbError, isBbError } from "../errors.ts";
import { boundedDocker } from "./cmd.ts";

interface DockerInfo {
  serverVersion: string;
  /** The engine's CPU architecture as docker reports it (amd64, arm64). */
  architecture: string;
  /** The engine's OS (linux). */
  os: string;
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

const firstLine = (text: string) => text.trim().split("\n").find((l) => l.trim()) ?? "";

/** What the docker CLI says when there is no engine at the other end (or no access to it). */
const UNREACHABLE = /Cannot connect to the Docker daemon|Is the docker daemon running|error during connect|permission denied while trying to connect to the Docker daemon/i;

/**
 * A docker call that failed because the engine cannot be reached, said once in the words
 * `dockerInfo` uses (a listing makes several calls, each with docker's long line); any
 * other error as it is.
 */
export function engineUnreachable(e: unknown): unknown {
  const stderr = isBbError(e) && typeof e.details.stderr === "string" ? e.details.stderr : "";
  return UNREACHABLE.test(stderr) ? new BbError("DOCKER", `Cannot reach the Docker engine (${firstLine(stderr)})`, { cause: e }) : e;
}

// One `docker version` per process: a tool asks before its first docker step and again when
// it picks an image's architecture, and each call costs a round trip to the engine.
let cached: Promise<DockerInfo> | undefined;

export function dockerInfo(): Promise<DockerInfo> {
  cached ??= queryDockerInfo();
  cached.catch(() => (cached = undefined)); // a failure is not remembered: the engine may come up
  return cached;
}

async function queryDockerInfo(): Promise<DockerInfo> {
  let out: string;
  try {
    // Bounded as every call that should answer at once: a hung engine is a TIMEOUT (exit
    // 124) after BB_DOCKER_TIMEOUT, said to be hung, not a stopped one to start.
    out = (await boundedDocker(["version", "--format", "{{json .Server}}"], { what: "Cannot reach the Docker engine" })).stdout;
  } catch (e) {
    if (isBbError(e) && e.code === "TIMEOUT") throw e;
    const message = e instanceof Error ? e.message : String(e);
    if (/ENOENT/.test(message)) {
      throw new BbError("DOCKER", `Docker is not installed (no docker command on PATH).\n${HOW_TO_INSTALL}`, { cause: e });
    }
    const stderr = isBbError(e) && typeof e.details.stderr === "string" ? e.details.stderr : "";
    throw new BbError("DOCKER", `Cannot reach the Docker engine (${firstLine(stderr || message)}).\n${HOW_TO_START}`, { cause: e });
  }
  let server: Record<string, unknown>;
  try {
    server = (JSON.parse(out) ?? {}) as Record<string, unknown>;
  } catch {
    // A wrapper or another CLI answering as `docker`: say what came back, not a parse error.
    throw new BbError("DOCKER", `Cannot read the Docker engine's version: \`docker version --format '{{json .Server}}'\` printed ${out.trim() ? JSON.stringify(firstLine(out)) : "nothing"}, not JSON. Is \`docker\` on PATH the Docker CLI?`);
  }
  const str = (k: string) => (typeof server[k] === "string" ? (server[k] as string) : "");
  // Some client versions exit 0 without a daemon and print a null server.
  if (!str("Version")) throw new BbError("DOCKER", `Cannot reach the Docker engine (docker version shows no server).\n${HOW_TO_START}`);
  return { serverVersion: str("Version"), architecture: str("Arch"), os: str("Os") };
}

/**
 * Run docker work while `docker version` checks the engine alongside it, instead of first:
 * a round trip off every start. When the engine cannot be reached, that explanation (how
 * to install or start docker) wins over whatever error the work itself ran into.
 */
export async function withEngine<T>(work: () => Promise<T>): Promise<T> {
  const [engine, result] = await Promise.allSettled([dockerInfo(), work()]);
  if (engine.status === "rejected") throw engine.reason;
  if (result.status === "rejected") throw result.reason;
  return result.value;
}
