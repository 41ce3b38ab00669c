import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { describe, it } from "node:test";
import { errPkt, parseRequest, pkt } from "./pktline.ts";

describe("git pkt-lines", () => {
  it("pkt() prefixes the total length in 4 hex digits", () => {
    assert.equal(pkt("a\n").toString(), "0006a\n");
    assert.equal(errPkt("no").toString(), "000bERR no\n");
  });

  it("parseRequest() reads service, path, host and the v2 extra parameters", () => {
    const req = parseRequest(Buffer.from("git-upload-pack /example.com/acme/widget\0host=git-gate:9418\0\0version=2\0"));
    assert.deepEqual(req, { service: "git-upload-pack", path: "/example.com/acme/widget", host: "git-gate:9418", extra: ["version=2"] });
  });

  it("parseRequest() accepts a v0 request and drops odd extra parameters", () => {
    assert.deepEqual(parseRequest(Buffer.from("git-receive-pack /a/b/c.git\0host=h\0\0version=1\0x=$(id)\0")), {
      service: "git-receive-pack",
      path: "/a/b/c.git",
      host: "h",
      extra: ["version=1"],
    });
    assert.equal(parseRequest(Buffer.from("GET / HTTP/1.1\r\n")), null);
  });
});
