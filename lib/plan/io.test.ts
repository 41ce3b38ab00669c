import { test } from "node:test";
import assert from "node:assert/strict";
import { BbError } from "../errors.ts";
import { parsePlanText, serializePlan, validatePlan } from "./io.ts";
import type { Plan } from "./schema.ts";
import { samplePlan } from "../../tests/support/plans.ts";

function rejects(fn: () => unknown, code: string, pattern: RegExp) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof BbError);
    assert.equal(e.code, code);
    assert.match(e.message, pattern);
    return true;
  });
}

test("a plan round-trips through serializePlan and parsePlanText unchanged", () => {
  const plan = samplePlan();
  assert.deepEqual(parsePlanText(serializePlan(plan)), plan);
});

test("keys the schema does not know pass through validation and serialization where they were (a tool writes the whole document on)", () => {
  const raw = JSON.parse(serializePlan(samplePlan()));
  raw.note = { by: "a script", tags: ["x"] };
  raw.bottle.extra = 1;
  raw.bottle.allowHosts = [{ host: "docs.example.test", tlsPassthrough: false, mine: true }];
  // JSON.parse makes "__proto__" an own key; put back, it must not become a prototype.
  const text = JSON.stringify(raw).replace(/^\{/, '{"__proto__":{"polluted":true},');
  const plan = validatePlan(JSON.parse(text));
  const out = JSON.parse(serializePlan(plan));
  assert.deepEqual(out.note, { by: "a script", tags: ["x"] });
  assert.equal(out.bottle.extra, 1);
  assert.equal(out.bottle.allowHosts[0].mine, true);
  assert.equal((plan as unknown as { polluted?: boolean }).polluted, undefined);
  assert.deepEqual(out.__proto__, { polluted: true }, "a __proto__ key is kept as a key");
  const named = validatePlan({ ...JSON.parse(serializePlan(samplePlan())), constructor: "c", toString: "t" });
  assert.deepEqual([JSON.parse(serializePlan(named)).constructor, JSON.parse(serializePlan(named)).toString], ["c", "t"]);
  assert.deepEqual(Object.keys(out).slice(0, 2), ["version", "slug"]);
  assert.equal(({} as { polluted?: boolean }).polluted, undefined);
});

test("an unknown version names the version this tool reads", () => {
  rejects(() => validatePlan({ ...samplePlan(), version: 99 }), "PLAN_VERSION", /has version 99; this tool reads plan version 1/);
  rejects(() => validatePlan({ slug: "x" }), "PLAN_VERSION", /has version null/);
});

test("a missing section says which tool produces it", () => {
  rejects(() => validatePlan(samplePlan(), ["bundle"]), "PLAN_SECTION_MISSING", /no "bundle" section: run bb-bundle first/);
  rejects(() => validatePlan(samplePlan(), ["vm"]), "PLAN_SECTION_MISSING", /run bb-vm first/);
});

test("a field of the wrong type is reported with its path", () => {
  const bad = samplePlan() as unknown as { agent: { provider: string } };
  bad.agent.provider = "emacs";
  rejects(() => validatePlan(bad), "PLAN_INVALID", /agent\.provider/);
});

test("empty input, non-JSON and non-objects are one clear error each", () => {
  rejects(() => parsePlanText("  "), "PLAN_INVALID", /is empty: pipe the output of bb-prepare/);
  rejects(() => parsePlanText("{nope"), "PLAN_INVALID", /is not JSON/);
  rejects(() => parsePlanText("[1]"), "PLAN_INVALID", /is not a JSON object/);
});

test("an invalid slug is refused", () => {
  rejects(() => validatePlan({ ...samplePlan(), slug: "Bad Slug" }), "PLAN_INVALID", /slug/);
});

test("an egress route's slot is only ever EGRESS_TOKEN_<n>: a plan naming another variable is refused", () => {
  const route = { host: "api.test", auth: "bearer", header: null, tokenEnv: "T", agentEnv: "T", placeholder: "p" } as const;
  const withSlot = (slot: string) => ({ ...samplePlan(), bottle: { ...samplePlan().bottle, egress: [{ ...route, slot }] } });
  assert.equal(validatePlan(withSlot("EGRESS_TOKEN_0")).bottle.egress[0]!.slot, "EGRESS_TOKEN_0");
  for (const slot of ["NODE_OPTIONS", "BB_SERVICES", "EGRESS_TOKEN_", "EGRESS_TOKEN_0 ", "X_EGRESS_TOKEN_1"]) {
    rejects(() => validatePlan(withSlot(slot)), "PLAN_INVALID", /bottle\.egress\.0\.slot.*EGRESS_TOKEN_<n>/);
  }
});

test("a plan with a bundle section validates when the section is required", () => {
  const plan: Plan = {
    ...samplePlan(),
    bundle: {
      container: "bb-shell-ab12-bundle",
      image: "bot-bottle/sidecar:x",
      networks: { internal: "bb-shell-ab12-int", egress: "bb-shell-ab12-egress" }, networkIds: null,
      caCert: "/s/bottles/shell-ab12/ca/ca.pem",
      agentUrls: { proxy: "http://firewall:8888", gitGate: null, supervise: "http://supervise:9100/mcp" },
      hostPorts: null,
      loopbackAddr: null,
      startedAt: "2026-11-23T00:00:01.000Z",
    },
  };
  assert.equal(validatePlan(JSON.parse(serializePlan(plan)), ["bundle"]).bundle?.container, "bb-shell-ab12-bundle");
  // Saved before the network IDs were recorded: they read as null (bb-vm then asks docker).
  const { networkIds: _, ...old } = plan.bundle!;
  assert.equal(validatePlan({ ...plan, bundle: old }, ["bundle"]).bundle?.networkIds, null);
  const networkIds = { internal: "a".repeat(64), egress: "b".repeat(64) };
  assert.deepEqual(validatePlan(JSON.parse(serializePlan({ ...plan, bundle: { ...plan.bundle!, networkIds } })), ["bundle"]).bundle?.networkIds, networkIds);
});

test("a vm section saved before the container id was recorded still parses, with id null", () => {
  const vm = { kind: "docker", image: "a", imageId: null, name: "bb-shell-ab12-agent", artifact: null, user: "node", home: "/home/node", env: {}, startedAt: "t" };
  assert.equal(validatePlan({ ...samplePlan(), vm }, ["vm"]).vm?.id, null);
  const id = "0123456789abcdef".repeat(4);
  assert.equal(validatePlan({ ...samplePlan(), vm: { ...vm, id } }, ["vm"]).vm?.id, id);
});
