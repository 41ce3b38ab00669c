// The kernel's TCP socket table as /proc/net/tcp and tcp6 print it: a header, then one
// socket a line ("sl local_address rem_address st ..."), the local address and port in
// hex, state 0A for LISTEN. Read in the bundle (which daemons are up) and on the host
// (what is bound to a loopback address).

/** The listening sockets in that text (several tables may follow one another). */
export function procListeners(text: string): { hexAddr: string; port: number }[] {
  const out: { hexAddr: string; port: number }[] = [];
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || f[3] !== "0A" || !f[1]!.includes(":")) continue;
    const [hexAddr, port] = f[1]!.split(":") as [string, string];
    out.push({ hexAddr, port: parseInt(port, 16) });
  }
  return out;
}
