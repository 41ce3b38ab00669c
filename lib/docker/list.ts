// Finding what bot-bottle created, by label (never by name patterns): the basis of bb-list
// and bb-cleanup.
import { BbError } from "../errors.ts";
import { boundedDocker } from "./cmd.ts";
import { engineUnreachable } from "./daemon.ts";
import { labelFilterArgs, parseLabelString } from "./labels.ts";

/** Label filter: key -> value, or key -> undefined for "has this label". */
export type LabelFilter = Record<string, string | undefined>;

export interface ContainerSummary {
  id: string;
  name: string;
  image: string;
  /** created, running, exited, ... */
  state: string;
  /** docker's human text ("Up 3 minutes"). */
  status: string;
  createdAt: string;
  labels: Record<string, string>;
}

export interface NetworkSummary {
  id: string;
  name: string;
  driver: string;
  internal: boolean;
  createdAt: string;
  labels: Record<string, string>;
}

function jsonLines(text: string, what: string): Record<string, unknown>[] {
  return text
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch (e) {
        throw new BbError("DOCKER", `${what}: docker printed a line that is not JSON: ${l.slice(0, 200)}`, { cause: e });
      }
    });
}

const str = (v: unknown) => (typeof v === "string" ? v : "");

/** Containers (running or not) carrying every label in `filter`. */
export async function listContainers(filter: LabelFilter): Promise<ContainerSummary[]> {
  const what = "Cannot list containers";
  const r = await boundedDocker(["ps", "--all", "--no-trunc", ...labelFilterArgs(filter), "--format", "{{json .}}"], { what }).catch((e) => {
    throw engineUnreachable(e);
  });
  return jsonLines(r.stdout, what).map((c) => ({
    id: str(c.ID),
    name: str(c.Names),
    image: str(c.Image),
    state: str(c.State),
    status: str(c.Status),
    createdAt: str(c.CreatedAt),
    labels: parseLabelString(str(c.Labels)),
  }));
}

/** Networks carrying every label in `filter`. */
export async function listNetworks(filter: LabelFilter): Promise<NetworkSummary[]> {
  const what = "Cannot list networks";
  const r = await boundedDocker(["network", "ls", "--no-trunc", ...labelFilterArgs(filter), "--format", "{{json .}}"], { what }).catch((e) => {
    throw engineUnreachable(e);
  });
  return jsonLines(r.stdout, what).map((n) => ({
    id: str(n.ID),
    name: str(n.Name),
    driver: str(n.Driver),
    internal: str(n.Internal) === "true",
    createdAt: str(n.CreatedAt),
    labels: parseLabelString(str(n.Labels)),
  }));
}

export interface VolumeSummary {
  name: string;
  labels: Record<string, string>;
}

/** Volumes carrying every label in `filter`. */
export async function listVolumes(filter: LabelFilter): Promise<VolumeSummary[]> {
  const what = "Cannot list volumes";
  const r = await boundedDocker(["volume", "ls", ...labelFilterArgs(filter), "--format", "{{json .}}"], { what }).catch((e) => {
    throw engineUnreachable(e);
  });
  return jsonLines(r.stdout, what).map((v) => ({ name: str(v.Name), labels: parseLabelString(str(v.Labels)) }));
}
