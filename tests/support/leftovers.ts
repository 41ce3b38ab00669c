// What a bottle left on the Docker engine, found with the docker CLI alone: by the labels
// bot-bottle puts on everything it makes, and by the names it gives them (bb-SLUG-...),
// so a resource made without its labels, which bb-cleanup could not find either, still
// shows up as left behind.
import { run } from "../../lib/proc.ts";

async function names(kind: "container" | "network", filter: string): Promise<string[]> {
  const argv = kind === "container" ? ["docker", "ps", "-a", "--filter", filter, "--format", "{{.Names}}"] : ["docker", "network", "ls", "--filter", filter, "--format", "{{.Name}}"];
  return (await run(argv)).stdout.split("\n").filter(Boolean);
}

export async function bottleResources(slug: string): Promise<{ containers: string[]; networks: string[] }> {
  const found = async (kind: "container" | "network") =>
    [...new Set([...(await names(kind, `label=bot-bottle.slug=${slug}`)), ...(await names(kind, `name=^bb-${slug}-`))])].sort();
  return { containers: await found("container"), networks: await found("network") };
}
