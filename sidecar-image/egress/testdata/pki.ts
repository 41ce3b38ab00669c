// Test helper: a throwaway CA and a server certificate for the given names, minted with
// openssl into `dir`. Plus a self-signed "rogue" certificate no test trusts, to prove
// egress verifies what upstreams present.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { run } from "../../../lib/proc.ts";

export interface TestPki {
  caCert: string;
  cert: string;
  key: string;
  rogueCert: string;
  rogueKey: string;
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

export async function mintTestPki(dir: string, names: string[]): Promise<TestPki> {
  const p = (f: string) => join(dir, f);
  await run(["openssl", "req", "-x509", ...EC, "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "1", "-subj", "/CN=bot-bottle test CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
  await run(["openssl", "req", ...EC, "-keyout", p("leaf.key"), "-out", p("leaf.csr"), "-subj", `/CN=${names[0]}`]);
  await writeFile(p("leaf.ext"), `subjectAltName=${names.map((n) => `DNS:${n}`).join(",")}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
  await run(["openssl", "x509", "-req", "-in", p("leaf.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"), "-CAcreateserial",
    "-out", p("leaf.pem"), "-days", "1", "-extfile", p("leaf.ext")]);
  await run(["openssl", "req", "-x509", ...EC, "-keyout", p("rogue.key"), "-out", p("rogue.pem"), "-days", "1", "-subj", "/CN=rogue.example.test",
    "-addext", "subjectAltName=DNS:rogue.example.test"]);
  return { caCert: p("ca.pem"), cert: p("leaf.pem"), key: p("leaf.key"), rogueCert: p("rogue.pem"), rogueKey: p("rogue.key") };
}
