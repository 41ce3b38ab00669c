// The bottle CA checked with node's own crypto, so the firewall can refuse a bad CA file
// at startup without loading @peculiar/x509 (and its tsyringe and asn1 stack), which only
// minting a leaf needs and which it imports at the first interception (issuer.ts).
import { createPrivateKey, X509Certificate } from "node:crypto";
import { BbError } from "../errors.ts";

/**
 * Check a CA pair: both PEMs parse, the key is ECDSA P-256 (PKCS#8 or SEC1 "EC PRIVATE
 * KEY") and is the certificate's, the certificate is a CA and valid at `now`. Returns the
 * key as PKCS#8 DER, what WebCrypto imports; throws BbError TLS "Cannot load CA: ...".
 */
export function checkCa(pair: { certPem: string; keyPem: string }, now = Date.now()): Uint8Array<ArrayBuffer> {
  try {
    const key = createPrivateKey(pair.keyPem);
    if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
      throw new Error(`key is ${key.asymmetricKeyType} ${key.asymmetricKeyDetails?.namedCurve ?? ""}, expected EC P-256`);
    }
    const cert = new X509Certificate(pair.certPem);
    if (!cert.checkPrivateKey(key)) throw new Error("certificate and key do not match");
    // Leaves it signed would be refused by every client: say so now, not at each handshake.
    if (!cert.ca) throw new Error("the certificate is not a CA (its basic constraints lack CA:TRUE)");
    if (!(Date.parse(cert.validFrom) <= now && now <= Date.parse(cert.validTo))) {
      throw new Error(`the certificate is valid from ${cert.validFrom} to ${cert.validTo}, not now (${new Date(now).toISOString()})`);
    }
    return new Uint8Array(key.export({ format: "der", type: "pkcs8" }));
  } catch (e) {
    throw new BbError("TLS", `Cannot load CA: ${(e as Error).message}`, { cause: e });
  }
}
