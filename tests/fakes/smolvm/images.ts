// Tiny docker images for tests, built from the local debian:bookworm-slim and labelled
// bot-bottle.test=1 so a cleanup can always find them.
import { randomBytes } from "node:crypto";
import { run } from "../../../lib/proc.ts";

export interface TestImage {
  tag: string;
  /** The image ID, "sha256:<hex>". */
  id: string;
  remove(): Promise<void>;
}

/**
 * Build `tag` with one extra layer holding `marker` in /bb-test-marker (so two builds with
 * different markers differ in content and ID). `extraLabel` changes only the config.
 */
export async function buildTestImage(opts: { tag?: string; marker?: string; extraLabel?: string } = {}): Promise<TestImage> {
  const tag = opts.tag ?? `bb-test-smolvm:${randomBytes(4).toString("hex")}`;
  const marker = opts.marker ?? randomBytes(8).toString("hex");
  const dockerfile = `FROM debian:bookworm-slim\nRUN echo ${JSON.stringify(marker)} > /bb-test-marker\n`;
  await run(
    ["docker", "build", "-q", "-t", tag, "--label", "bot-bottle.test=1", ...(opts.extraLabel ? ["--label", opts.extraLabel] : []), "-"],
    { input: dockerfile, env: { DOCKER_BUILDKIT: "0" }, timeoutMs: 120_000 },
  );
  const id = (await run(["docker", "image", "inspect", "--format", "{{.Id}}", tag])).stdout.trim();
  return {
    tag,
    id,
    async remove() {
      // By ID: a later build under the same tag leaves this one untagged but still there.
      await run(["docker", "rmi", "-f", id], { expect: [0, 1] });
    },
  };
}
