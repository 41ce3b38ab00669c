// A FirewallPolicy compiled once for the hot path: host rules in a Map keyed by exact host
// and by "*." suffix, and the DLP scanner built with the sensitive values read from the
// environment at load time. A reload (SIGHUP or SIGUSR1) swaps one CompiledPolicy object.
import { isIP } from "node:net";
import process from "node:process";
import { createScanner, type Scanner, type ScannerOptions } from "../../lib/dlp/mod.ts";
import { DEFAULT_PORTS, type FirewallPolicy } from "../../lib/sidecar-config.ts";
import { normalizeHost } from "../../lib/tls/issuer.ts";

export interface HostRule {
  /** The policy entry that matched, as written ("api.github.com", "*.npmjs.org"). */
  pattern: string;
  tlsPassthrough: boolean;
  /** Ports the host may be reached on. */
  ports: ReadonlySet<number>;
  /** Lower-case names of headers egress replaces on this host (not scanned: they never leave). */
  replacedHeaders: ReadonlySet<string>;
}

export interface CompiledPolicy {
  /** The rule allowing `host`, or null when the host is not in the allowlist. */
  ruleFor(host: string): HostRule | null;
  scanner: Scanner;
  /** What `scanner` was made from, to make the same one on the scan worker (off-thread.ts). */
  scannerOptions: ScannerOptions;
  /** The same detectors minus the entropy check, for headers that echo server-issued values. */
  echoScanner: Scanner;
  hostCount: number;
  /** Problems worth a log line (unset sensitive slots, values too short to scan for). */
  warnings: string[];
}

export function compilePolicy(policy: FirewallPolicy, env: Record<string, string | undefined> = process.env): CompiledPolicy {
  const exact = new Map<string, HostRule>();
  const suffixes = new Map<string, HostRule>(); // "example.com" for "*.example.com"
  for (const h of policy.hosts) {
    const rule = {
      pattern: h.host,
      tlsPassthrough: h.tlsPassthrough,
      ports: new Set(h.ports ?? DEFAULT_PORTS),
      replacedHeaders: new Set((h.replacedHeaders ?? []).map((n) => n.toLowerCase())),
    };
    const host = normalizeHost(h.host);
    if (host.startsWith("*.")) suffixes.set(host.slice(2), rule);
    else exact.set(host, rule);
  }

  const warnings: string[] = [];
  const sensitive: { name: string; value: string }[] = [];
  for (const { name, slot } of policy.dlp.sensitive) {
    const value = env[slot];
    if (value) sensitive.push({ name, value });
    else warnings.push(`sensitive env ${name}: its slot ${slot} is not set, so there is nothing to scan for`);
  }
  const scannerOptions: ScannerOptions = { disabled: policy.dlp.disabled, sensitive };
  const scanner = createScanner(scannerOptions);
  for (const name of scanner.ignoredSensitive) warnings.push(`sensitive env ${name}: value too short to scan for safely; ignored`);
  const echoScanner = createScanner({ disabled: [...policy.dlp.disabled, "high_entropy"], sensitive });

  return {
    ruleFor(raw) {
      const host = normalizeHost(raw);
      const hit = exact.get(host);
      if (hit) return hit;
      // An address has no parent domains: "*.0.1" must not allow 10.0.0.1.
      if (isIP(host)) return null;
      // Walk parent domains from the most specific: "*.a.example.com" beats "*.example.com".
      for (let i = host.indexOf("."); i !== -1; i = host.indexOf(".", i + 1)) {
        const rule = suffixes.get(host.slice(i + 1));
        if (rule) return rule;
      }
      return null;
    },
    scanner,
    scannerOptions,
    echoScanner,
    hostCount: policy.hosts.length,
    warnings,
  };
}
