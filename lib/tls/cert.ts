// Certificate minting with @peculiar/x509 over WebCrypto (globalThis.crypto), so the same
// code runs under Node 20 and Deno. Every key is ECDSA P-256: small, fast to sign with,
// and accepted by every TLS stack the agents use (OpenSSL, BoringSSL, rustls, Go).
import { Buffer } from "node:buffer";
import { isIP } from "node:net";
import "./reflect-metadata.ts";
import * as x509 from "@peculiar/x509";
import { BbError } from "../errors.ts";
import { checkCa } from "./ca-check.ts";

const EC = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGN = { name: "ECDSA", hash: "SHA-256" } as const;
const DAY_MS = 86_400_000;

export interface PemPair {
  certPem: string;
  keyPem: string;
}

/** A CA (or leaf key) loaded once for repeated signing. */
interface Signer {
  cert: x509.X509Certificate;
  key: CryptoKey;
}

const subtle = () => globalThis.crypto.subtle;

function serial(): string {
  const b = globalThis.crypto.getRandomValues(new Uint8Array(16));
  b[0] = b[0]! & 0x7f; // DER INTEGER must stay positive
  if (b[0] === 0) b[0] = 1; // and minimal (no leading zero byte)
  return Buffer.from(b).toString("hex");
}

/** Backdate by a day: clocks inside VMs and containers drift. */
function validity(days: number): { notBefore: Date; notAfter: Date } {
  const now = Date.now();
  return { notBefore: new Date(now - DAY_MS), notAfter: new Date(now + days * DAY_MS) };
}

/** RFC 4514 escaping for a CN value; a host name never needs more than this. */
function cn(value: string): string {
  return `CN=${value.slice(0, 64).replace(/[,+"\\<>;=]/g, (c) => `\\${c}`)}`;
}

export function generateKeyPair(): Promise<CryptoKeyPair> {
  return subtle().generateKey(EC, true, ["sign", "verify"]) as Promise<CryptoKeyPair>;
}

export async function keyPem(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await subtle().exportKey("pkcs8", key), "PRIVATE KEY");
}

/** Mint a self-signed CA (ECDSA P-256). `days` defaults to 10 years. */
export async function mintCa(opts: { commonName: string; days?: number }): Promise<PemPair> {
  const keys = await generateKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: cn(opts.commonName),
    ...validity(opts.days ?? 3650),
    signingAlgorithm: SIGN,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString("pem"), keyPem: await keyPem(keys.privateKey) };
}

/** Load a CA from PEM (key as PKCS#8 or SEC1 "EC PRIVATE KEY"); it must be ECDSA P-256
 * and pass checkCa. */
export async function loadSigner(pair: { certPem: string; keyPem: string }): Promise<Signer> {
  const der = checkCa(pair);
  const key = await subtle().importKey("pkcs8", der, EC, false, ["sign"]);
  return { cert: new x509.X509Certificate(pair.certPem), key };
}

function altNames(hosts: string[]): x509.JsonGeneralName[] {
  return hosts.map((h) => {
    const bare = h.startsWith("[") && h.endsWith("]") ? h.slice(1, -1) : h;
    return isIP(bare) ? { type: "ip", value: bare } : { type: "dns", value: h };
  });
}

/** Copy the CA's own SKI when it has one, so chain builders match issuer and leaf exactly. */
async function authorityKeyId(ca: x509.X509Certificate): Promise<x509.AuthorityKeyIdentifierExtension> {
  const ski = ca.getExtension(x509.SubjectKeyIdentifierExtension);
  return ski ? new x509.AuthorityKeyIdentifierExtension(ski.keyId) : x509.AuthorityKeyIdentifierExtension.create(ca.publicKey);
}

/**
 * Sign a server certificate for `hosts` (DNS names or IP literals) with `ca`, using the
 * given leaf key pair. Leaf validity stays under the 398 days Apple and browsers accept.
 */
export async function signLeaf(opts: { ca: Signer; publicKey: CryptoKey; hosts: string[]; days?: number }): Promise<string> {
  if (opts.hosts.length === 0 || opts.hosts.some((h) => !h)) throw new BbError("TLS", "Cannot mint a leaf certificate without a host name");
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: cn(opts.hosts[0]!),
    issuer: opts.ca.cert.subjectName,
    ...validity(opts.days ?? 365),
    signingAlgorithm: SIGN,
    publicKey: opts.publicKey,
    signingKey: opts.ca.key,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(altNames(opts.hosts)),
      await x509.SubjectKeyIdentifierExtension.create(opts.publicKey),
      await authorityKeyId(opts.ca.cert),
    ],
  });
  return cert.toString("pem");
}

/** Mint a leaf (with its own fresh key) for a fixed host set, e.g. a fake HTTPS upstream in tests. */
export async function mintLeaf(opts: { caCertPem: string; caKeyPem: string; hosts: string[]; days?: number }): Promise<PemPair> {
  const ca = await loadSigner({ certPem: opts.caCertPem, keyPem: opts.caKeyPem });
  const keys = await generateKeyPair();
  const certPem = await signLeaf({ ca, publicKey: keys.publicKey, hosts: opts.hosts, days: opts.days });
  return { certPem, keyPem: await keyPem(keys.privateKey) };
}
