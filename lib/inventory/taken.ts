// A slug another state root's bottle holds. State dirs are per root, but docker's container
// and network names are one namespace for the whole engine: a second root's bottle under
// the same slug would fail half-way in (a name in use), or worse, attach to the first
// one's network or container. So the tools that name docker resources after a slug ask
// first, by label and name, before they create anything; bb-vm, given the network IDs bb-bundle
// recorded, asks only when docker refuses its container (lib/vm/docker.ts).
import { BbError } from "../errors.ts";
import { LABEL } from "../docker/index.ts";
import { log } from "../log.ts";
import { bottleOf, DOCKER_ENGINE, otherRoot, realRoot, type DockerSource } from "./collect.ts";

interface TakenOptions {
  slug: string;
  stateRoot: string;
  /** What lists labelled resources (default: the docker CLI). */
  docker?: DockerSource;
  /** No docker, or no engine answering, is no answer rather than an error (bb-prepare,
   * which needs no engine: bb-bundle asks again, and cannot do without one). */
  engineOptional?: boolean;
}

/** The other state root whose bottle `slug` has containers or networks on this engine, or null. */
export async function slugElsewhere(opts: TakenOptions): Promise<string | null> {
  const filter = { [LABEL.root]: "1", [LABEL.slug]: opts.slug };
  const docker = opts.docker ?? DOCKER_ENGINE;
  let containers, networks;
  try {
    [containers, networks] = await Promise.all([docker.listContainers(filter), docker.listNetworks(filter)]);
  } catch (e) {
    if (!opts.engineOptional) throw e;
    log.debug(`cannot ask docker whether slug ${opts.slug} is another state root's: ${e instanceof Error ? e.message : String(e)}`);
    return null;
  }
  const here = realRoot(opts.stateRoot);
  for (const r of [...containers, ...networks]) {
    // Only a name bot-bottle gives can collide: a container run from an image committed
    // from a bottle carries all its labels under a name of its own, and takes no slug.
    if (bottleOf(r).slug === null) continue;
    const other = otherRoot(r.labels, here);
    if (other !== null) return other;
  }
  return null;
}

/** Throws SLUG_TAKEN when `slug` is a bottle of another state root (see slugElsewhere). */
export async function refuseSlugElsewhere(opts: TakenOptions): Promise<void> {
  const other = await slugElsewhere(opts);
  if (other === null) return;
  throw new BbError(
    "SLUG_TAKEN",
    `Slug ${opts.slug} is taken by a bottle of state root ${other} (docker names containers and networks by slug alone, one namespace for every state root on this engine); nothing was made: pick another slug, or use that bottle from its own root (BB_STATE_DIR=${other})`,
    { details: { slug: opts.slug, stateRoot: other } },
  );
}
