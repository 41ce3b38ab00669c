import assert from "node:assert/strict";
import { test } from "node:test";
import { LABEL, bottleLabels, decodeLabelValue, encodeLabelValue, labelArgs, labelFilterArgs, parseLabelString, testLabels } from "./labels.ts";

test("bottleLabels() marks a resource with root, slug, backend, agent and role, plus extras", () => {
  const labels = bottleLabels({ slug: "researcher-k3x9", backend: "docker", agent: "researcher", stateRoot: "/home/a,b/100%/state", role: "bundle", extra: { [LABEL.test]: "1" } });
  assert.deepEqual(labels, {
    "bot-bottle": "1",
    "bot-bottle.slug": "researcher-k3x9",
    "bot-bottle.backend": "docker",
    "bot-bottle.agent": "researcher",
    "bot-bottle.role": "bundle",
    "bot-bottle.state-root": "/home/a%2Cb/100%25/state",
    "bot-bottle.test": "1",
  });
  assert.equal(decodeLabelValue(labels["bot-bottle.state-root"]!), "/home/a,b/100%/state");
  assert.equal(decodeLabelValue(encodeLabelValue("/x\n%2C,y")), "/x\n%2C,y");
  assert.equal(parseLabelString(Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(","))["bot-bottle.state-root"], "/home/a%2Cb/100%25/state");
});

test("bottleLabels() rejects a value with a comma, which docker's label list could not carry", () => {
  assert.throws(() => bottleLabels({ slug: "a,b", backend: "docker", agent: "x", stateRoot: null, role: "agent" }), /bot-bottle\.slug.*comma/);
});

test("labelArgs() and labelFilterArgs() build --label and --filter pairs", () => {
  assert.deepEqual(labelArgs({ a: "1", "b.c": "x" }), ["--label", "a=1", "--label", "b.c=x"]);
  assert.deepEqual(labelFilterArgs({ a: "1", b: undefined }), ["--filter", "label=a=1", "--filter", "label=b"]);
});

test("testLabels() adds the suite run's id when scripts/test.mjs runs the test, so its leak sweep takes only its own", () => {
  assert.deepEqual(testLabels({}), { "bot-bottle.test": "1" });
  assert.deepEqual(testLabels({ BB_TEST_SUITE: "ab12" }), { "bot-bottle.test": "1", "bot-bottle.test-suite": "ab12" });
});

test("parseLabelString() reads docker's k=v,k=v label text, keeping '=' inside values", () => {
  assert.deepEqual(parseLabelString("bot-bottle=1,bot-bottle.slug=r-1,x=a=b"), { "bot-bottle": "1", "bot-bottle.slug": "r-1", x: "a=b" });
  assert.deepEqual(parseLabelString(""), {});
});
