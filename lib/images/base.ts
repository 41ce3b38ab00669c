// The base image must be present before a build: with no registry reachable, docker would
// otherwise try to pull it and fail with a message that does not say what to do.
import { BbError } from "../errors.ts";
import { inspectImage } from "../docker/inspect.ts";
import { BASE_IMAGE } from "./versions.ts";

/** Returns the base image's ID, or throws DOCKER naming the ways to get it. */
export async function ensureBaseImage(ref: string = BASE_IMAGE): Promise<string> {
  const image = await inspectImage(ref);
  if (image) return image.id;
  throw new BbError(
    "DOCKER",
    [
      `The base image ${ref} is not present in the local Docker engine.`,
      `  With a registry: docker pull ${ref}`,
      "  Without one (debootstrap from the Debian mirror): sudo scripts/ensure-base-image.sh",
    ].join("\n"),
    { details: { image: ref } },
  );
}
