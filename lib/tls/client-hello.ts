// The server name in a TLS ClientHello, read without decrypting anything. The firewall
// does not intercept a passthrough host, but it can still refuse a tunnel whose TLS
// names another server than the CONNECT did: on a shared front end (a CDN) the SNI picks
// the site, so "CONNECT allowed.example:443" then "SNI other.example" would reach a host
// the bottle never declared.

/** Outcome of reading the start of a client's stream. */
type HelloRead =
  | { kind: "need"; bytes: number } // the first record is not all here yet: wait for `bytes`
  | { kind: "not-tls" } // some other protocol (ssh, plain text): nothing to check
  | { kind: "hello"; sni: string | null }
  | { kind: "bad"; reason: string };

const HANDSHAKE = 0x16;
const CLIENT_HELLO = 1;
const SERVER_NAME = 0;

/** Read the SNI from the first TLS record at the start of `buf`. */
export function readClientHello(buf: Buffer): HelloRead {
  if (buf.length === 0) return { kind: "need", bytes: 1 };
  if (buf[0] !== HANDSHAKE) return { kind: "not-tls" };
  if (buf.length < 5) return { kind: "need", bytes: 5 };
  const recordEnd = 5 + buf.readUInt16BE(3);
  if (buf.length < recordEnd) return { kind: "need", bytes: recordEnd };
  const r = new Reader(buf.subarray(5, recordEnd));
  try {
    if (r.u8() !== CLIENT_HELLO) return { kind: "bad", reason: "the first TLS message is not a ClientHello" };
    const helloLength = r.u24();
    // Real clients send the ClientHello in one record; one split across records could hide
    // its server name from a check that reads only the first.
    if (helloLength > r.left()) return { kind: "bad", reason: "the ClientHello is split across TLS records" };
    r.skip(2 + 32); // client version, random
    r.skip(r.u8()); // session id
    r.skip(r.u16()); // cipher suites
    r.skip(r.u8()); // compression methods
    if (r.left() === 0) return { kind: "hello", sni: null }; // no extensions at all
    const extensions = new Reader(r.take(r.u16()));
    while (extensions.left() > 0) {
      const type = extensions.u16();
      const data = new Reader(extensions.take(extensions.u16()));
      if (type !== SERVER_NAME) continue;
      const list = new Reader(data.take(data.u16()));
      while (list.left() > 0) {
        const nameType = list.u8();
        const name = list.take(list.u16());
        if (nameType === 0) return { kind: "hello", sni: name.toString("latin1").toLowerCase().replace(/\.$/, "") };
      }
    }
    return { kind: "hello", sni: null };
  } catch {
    return { kind: "bad", reason: "the ClientHello is malformed" };
  }
}

/** Bounds-checked reads from a buffer; running past the end throws. */
class Reader {
  #at = 0;
  constructor(private readonly buf: Buffer) {}
  left(): number {
    return this.buf.length - this.#at;
  }
  take(n: number): Buffer {
    if (n > this.left()) throw new RangeError("past the end");
    const out = this.buf.subarray(this.#at, this.#at + n);
    this.#at += n;
    return out;
  }
  skip(n: number): void {
    this.take(n);
  }
  u8(): number {
    return this.take(1)[0]!;
  }
  u16(): number {
    return this.take(2).readUInt16BE(0);
  }
  u24(): number {
    return this.take(3).readUIntBE(0, 3);
  }
}
