// Per-bottle docker networks: create (optionally --internal, so nothing on it can leave),
// remove, and attach a running container to a second network under aliases.
import { boundedDocker, failure, isNoSuch } from "./cmd.ts";
import { labelArgs } from "./labels.ts";

interface NetworkSpec {
  name: string;
  /** No route out of the network, not even to the host: the agent side of a bottle. */
  internal?: boolean;
  labels: Record<string, string>;
}

/** Create a bridge network; returns its ID. */
export async function createNetwork(spec: NetworkSpec): Promise<string> {
  const args = ["network", "create", "--driver", "bridge"];
  // --internal alone only stops forwarding: the host still holds the gateway address on
  // the bridge and containers keep a default route to it, so they reach every host
  // service (and a resolver) listening on any host address. With no host address on the
  // bridge, only the containers on it can talk to each other.
  if (spec.internal) args.push("--internal", "--opt", "com.docker.network.bridge.inhibit_ipv4=true");
  args.push(...labelArgs(spec.labels), spec.name);
  const r = await boundedDocker(args, { what: `Cannot create network ${spec.name}` });
  return r.stdout.trim();
}

/**
 * Remove a network by name or ID; false when it did not exist. Docker lets two `network
 * create` calls at the same moment both make one under the name (two flows starting the
 * same slug), and then refuses `network rm NAME` as ambiguous: every bot-bottle network of
 * that exact name goes then, by ID. `shown`: its name, for messages, when `name` is an ID.
 */
export async function removeNetwork(name: string, shown = name): Promise<boolean> {
  const r = await boundedDocker(["network", "rm", name], { expect: [0, 1], what: `Cannot remove network ${shown}` });
  if (r.code === 0) return true;
  if (isNoSuch(r.stderr)) return false;
  if (!/ambiguous/.test(r.stderr)) throw failure(r, `Cannot remove network ${shown}`);
  const listed = await boundedDocker(["network", "ls", "--no-trunc", "--filter", "label=bot-bottle=1", "--filter", `name=${name}`, "--format", "{{.ID}} {{.Name}}"], { what: `Cannot list the networks named ${name}` });
  const ids = listed.stdout.split("\n").filter((l) => l.slice(l.indexOf(" ") + 1) === name).map((l) => l.slice(0, l.indexOf(" ")));
  if (ids.length === 0) return false;
  const byId = await boundedDocker(["network", "rm", ...ids], { expect: [0, 1], what: `Cannot remove the networks named ${name}` });
  if (byId.code !== 0 && !isNoSuch(byId.stderr)) throw failure(byId, `Cannot remove the networks named ${name}`);
  return true;
}

/** Attach a container to another network (by name or ID; `name` for messages), reachable there under `aliases`. */
export async function connectNetwork(opts: { network: string; name?: string; container: string; aliases?: string[] }): Promise<void> {
  const args = ["network", "connect", ...(opts.aliases ?? []).flatMap((a) => ["--alias", a]), opts.network, opts.container];
  await boundedDocker(args, { what: `Cannot connect container ${opts.container} to network ${opts.name ?? opts.network}` });
}

