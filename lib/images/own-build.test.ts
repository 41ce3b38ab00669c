import assert from "node:assert/strict";
import { test } from "node:test";
import { endsAsOurBuild } from "./own-build.ts";

const base = ['/bin/sh -c #(nop)  CMD ["bash"]', "/bin/sh -c #(nop) ADD file:abc in / "];
const legacy = (...top: string[]) => [...top.map((s) => `/bin/sh -c #(nop)  ${s}`), "/bin/sh -c #(nop)  LABEL bot-bottle=1 bot-bottle.image=sidecar", "/bin/sh -c #(nop) WORKDIR /home/bb", ...base];

test("endsAsOurBuild() takes a history that ends with our Dockerfile's LABEL, its one CMD or ENTRYPOINT and (legacy builder) our build labels", () => {
  assert.equal(endsAsOurBuild(legacy("LABEL bot-bottle.base-id=sha256:1", 'ENTRYPOINT ["node" "/opt/bb/sidecar/init.js"]')), true);
  assert.equal(endsAsOurBuild(legacy("LABEL bot-bottle.test=1", "LABEL bot-bottle.base-id=sha256:1", 'CMD ["bash"]')), true, "one step a --label");
  // BuildKit records no step for --label, and writes steps without the shell prefix.
  assert.equal(endsAsOurBuild(['CMD ["bash"]', 'LABEL bot-bottle="1" bot-bottle.image="agent"', "WORKDIR /home/node", ...base]), true);
});

test("endsAsOurBuild() refuses an image built FROM ours, whatever it adds, and one that is not ours at all", () => {
  const ours = legacy("LABEL bot-bottle.base-id=sha256:1", 'ENTRYPOINT ["true"]');
  assert.equal(endsAsOurBuild(["/bin/sh -c #(nop)  ENV STEP=1", ...ours]), false);
  assert.equal(endsAsOurBuild(['/bin/sh -c #(nop)  ENTRYPOINT ["sh"]', ...ours]), false, "a step of the same kind as our last");
  assert.equal(endsAsOurBuild(["/bin/sh -c #(nop)  LABEL theirs=1", ...ours]), false, "their own --label");
  assert.equal(endsAsOurBuild(["/bin/sh -c #(nop)  LABEL bot-bottle.test=1", '/bin/sh -c #(nop)  CMD ["x"]', "/bin/sh -c #(nop)  LABEL bot-bottle=1 bot-bottle.image=agent"]), false, "build labels without our base-id");
  assert.equal(endsAsOurBuild(['CMD ["bash"]', "ENV STEP=1", 'LABEL bot-bottle="1" bot-bottle.image="agent"']), false);
  assert.equal(endsAsOurBuild(base), false);
  assert.equal(endsAsOurBuild([]), false);
});
