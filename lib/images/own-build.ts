// Whether an untagged image that carries our labels is one bot-bottle built, for images
// built before this machine kept its record of them (lib/images/built.ts). Labels alone do
// not say it: an image built FROM ours inherits every one. Its history does: our
// Dockerfiles (agent-image/, sidecar-image/) end with their LABEL bot-bottle=1
// bot-bottle.image=NAME and then one CMD or ENTRYPOINT, and the legacy builder adds a last
// step for each `docker build --label` (bot-bottle.base-id=..., and the test labels in
// tests). An image built FROM ours has steps of its own after those, so it never ends
// that way.
import { boundedDocker } from "../docker/cmd.ts";
import { BASE_ID_LABEL } from "./ensure.ts";

// The legacy builder writes a step as `/bin/sh -c #(nop)  CMD [...]`, BuildKit as `CMD [...]`.
const NOP = /^\/bin\/sh -c #\(nop\)\s+/;
const FINAL = /^(CMD|ENTRYPOINT) /;
const OUR_LABEL = /^LABEL bot-bottle="?1"? bot-bottle\.image="?(agent|sidecar)"?$/;
// A step of labels of ours alone (all of their values are free of spaces).
const BUILD_LABELS = /^LABEL (bot-bottle[\w.-]*=\S+ )*bot-bottle[\w.-]*=\S+$/;

/** Pure: whether a history (newest step first, as `docker image history` lists it) ends as our builds do. */
export function endsAsOurBuild(history: string[]): boolean {
  const steps = history.map((s) => s.replace(NOP, "").trim());
  let at = 0;
  while (BUILD_LABELS.test(steps[at] ?? "")) at++;
  if (at > 0 && !steps.slice(0, at).some((s) => s.includes(` ${BASE_ID_LABEL}=`))) return false;
  return FINAL.test(steps[at] ?? "") && OUR_LABEL.test(steps[at + 1] ?? "");
}

/** Whether the image `id` ends as our builds do (see endsAsOurBuild). */
export async function builtByUs(id: string): Promise<boolean> {
  const r = await boundedDocker(["image", "history", "--no-trunc", "--format", "{{json .CreatedBy}}", id], { what: `Cannot read the history of image ${id}`, expect: [0, 1] });
  // Removed since it was listed: nothing to judge.
  if (r.code !== 0) return false;
  return endsAsOurBuild(r.stdout.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l) as string));
}
