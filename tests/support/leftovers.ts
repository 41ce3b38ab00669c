// What a bottle left on the Docker engine, found with the docker CLI alone: by the labels
// bot-bottle puts on everything it makes, and by the names it gives them (bb-SLUG-...),
// so a resource made without its labels, which bb-cleanup could not find either, still
// shows up as left behind.
import { run } from "../../lib/proc.ts";

type Kind = "container" | "network" | "volume";

const LIST: Record<Kind, string[]> = {
  container: ["docker", "ps", "-a", "--format", "{{.Names}}"],
  network: ["docker", "network", "ls", "--format", "{{.Name}}"],
  volume: ["docker", "volume", "ls", "--format", "{{.Name}}"],
};

async function names(kind: Kind, filter: string): Promise<string[]> {
  return (await run([...LIST[kind], "--filter", filter])).stdout.split("\n").filter(Boolean);
}

export async function bottleResources(slug: string): Promise<{ containers: string[]; networks: string[]; volumes: string[] }> {
  const found = async (kind: Kind) => [...new Set([...(await names(kind, `label=bot-bottle.slug=${slug}`)), ...(await names(kind, `name=^bb-${slug}-`))])].sort();
  return { containers: await found("container"), networks: await found("network"), volumes: await found("volume") };
}
