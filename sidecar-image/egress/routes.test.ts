import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BbError } from "../../lib/errors.ts";
import { injectedHeader, routeTable, type Route } from "./routes.ts";

const route = (r: Partial<Route>): Route => ({ host: "api.example.test", auth: "bearer", header: null, slot: "EGRESS_TOKEN_0", ...r });

describe("egress routes", () => {
  it("routeTable() rejects a header route without a header name", () => {
    assert.throws(() => routeTable({ version: 1, routes: [route({ auth: "header" })] }), (e: BbError) => e.code === "CONFIG" && /needs a header name/.test(e.message));
  });

  it("routeTable() rejects a host routed twice, case-insensitively", () => {
    assert.throws(() => routeTable({ version: 1, routes: [route({}), route({ host: "API.example.test" })] }), /twice/);
  });

  it("routeTable() keys routes by lower-case host", () => {
    assert.equal(routeTable({ version: 1, routes: [route({ host: "API.Example.test" })] }).get("api.example.test")?.slot, "EGRESS_TOKEN_0");
  });

  it("injectedHeader() refuses an empty slot and names host and slot", () => {
    const r = injectedHeader(route({ slot: "EGRESS_TOKEN_7" }), { EGRESS_TOKEN_7: "" });
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.reason : "", /api\.example\.test.*EGRESS_TOKEN_7/);
  });

  it("injectedHeader() lower-cases a named header", () => {
    assert.deepEqual(injectedHeader(route({ auth: "header", header: "X-Private-Token" }), { EGRESS_TOKEN_0: "t" }), { ok: true, header: ["x-private-token", "t"] });
  });
});
