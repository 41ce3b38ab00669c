// Known credential formats. Each pattern is the JS regex source of one alternative of the
// scanner's combined known-format regex, so one pass over the text tests them all. Every
// pattern starts with a literal (or a short literal set) so the regex engine rejects most
// positions at the first character. Boundaries are look-arounds rather than \b because
// '-' and '_' are part of many token alphabets.
import { Buffer } from "node:buffer";
import type { Detector } from "../sidecar-config.ts";

export interface Pattern {
  detector: Detector;
  label: string;
  source: string;
  /** Extra check on the matched text (cheap regexes cannot express it). */
  accept?: (match: string) => boolean;
  /** A safe excerpt when the generic one (a few leading characters) says too little. */
  excerpt?: (match: string) => string;
}

/** Case-insensitive spelling of a literal, for the few patterns keyed by a field name
 * (the combined regex has no `i` flag: that would slow every other alternative). */
function ci(word: string): string {
  return [...word].map((c) => (/[a-z]/i.test(c) ? `[${c.toLowerCase()}${c.toUpperCase()}]` : c.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&"))).join("");
}

const SEP = "[_.-]?";

// A key body must follow the header (the header alone is common in code and docs); the
// optional tail claims the whole block so its base64 lines are not reported again.
const PRIVATE_KEY =
  "-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----[\\s\\S]{0,200}?[A-Za-z0-9+/]{40}(?:[\\s\\S]{0,16384}?-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----)?";
const pemHeader = (match: string) => match.slice(match.indexOf("-----BEGIN"), match.indexOf("-----", match.indexOf("-----BEGIN") + 10) + 5);
const AWS_SECRET_NAME = `(?:${ci("aws")}${SEP}${ci("secret")}${SEP}(?:${ci("access")}${SEP})?${ci("key")}|${ci("secretaccesskey")})`;

/** A JWT header is base64url JSON naming its algorithm; this keeps random `ey...` runs out. */
function jwtHeader(match: string): boolean {
  try {
    const header = JSON.parse(Buffer.from(match.slice(0, match.indexOf(".")), "base64url").toString("utf8"));
    return typeof header === "object" && header !== null && typeof header.alg === "string";
  } catch {
    return false;
  }
}

export const PATTERNS: readonly Pattern[] = [
  { detector: "aws", label: "AWS access key id", source: "(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])" },
  {
    detector: "aws",
    label: "AWS secret access key",
    // Quotes may be JSON-escaped when the snippet travels inside a JSON string.
    source: `${AWS_SECRET_NAME}(?:\\\\?["'])?\\s{0,3}[:=]\\s{0,3}(?:\\\\?["'])?[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])`,
  },
  { detector: "gcp", label: "GCP service-account private key", source: `"private_key\\\\?"\\s{0,3}:\\s{0,3}\\\\?"${PRIVATE_KEY}`, excerpt: pemHeader },
  { detector: "gcp", label: "Google API key", source: "(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])" },
  { detector: "github", label: "GitHub token", source: "(?<![A-Za-z0-9_])gh[pousr]_[A-Za-z0-9]{36,251}(?![A-Za-z0-9_])" },
  { detector: "github", label: "GitHub fine-grained token", source: "(?<![A-Za-z0-9_])github_pat_[A-Za-z0-9_]{60,251}(?![A-Za-z0-9_])" },
  { detector: "gitlab", label: "GitLab token", source: "(?<![A-Za-z0-9_-])gl(?:pat|dt|rt|ptt|cbt)-[A-Za-z0-9_-]{20,}" },
  { detector: "slack", label: "Slack token", source: "(?<![A-Za-z0-9_-])(?:xox[baprs]|xapp)-[A-Za-z0-9-]{10,}" },
  { detector: "slack", label: "Slack webhook URL", source: "hooks\\.slack\\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]{20,}" },
  { detector: "stripe", label: "Stripe live key", source: "(?<![A-Za-z0-9_])[sr]k_live_[A-Za-z0-9]{24,}" },
  { detector: "anthropic", label: "Anthropic key", source: "(?<![A-Za-z0-9_-])sk-ant-[A-Za-z0-9_-]{20,}" },
  {
    detector: "openai",
    label: "OpenAI key",
    source:
      "(?<![A-Za-z0-9_-])sk-(?:(?:proj|svcacct|admin|None)-[A-Za-z0-9_-]{20,}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}(?![A-Za-z0-9])|[A-Za-z0-9]{48}(?![A-Za-z0-9]))",
  },
  { detector: "npm", label: "npm token", source: "(?<![A-Za-z0-9_])npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])" },
  { detector: "private_key", label: "PEM private key", source: PRIVATE_KEY, excerpt: pemHeader },
  {
    detector: "jwt",
    label: "JWT",
    source: "(?<![A-Za-z0-9_-])ey[A-Za-z0-9_-]{10,}\\.[A-Za-z0-9_-]{10,}\\.[A-Za-z0-9_-]*",
    accept: jwtHeader,
  },
];

/**
 * Public, non-secret blocks that look random (certificates, public keys, signatures, data
 * URIs). They never produce a finding themselves: what their base64 carries is decoded and
 * scanned, and the base64 is spared the entropy check only when that payload has the shape
 * the block claims (blocks.ts). Known formats in the block's text are still found (the
 * scan resumes inside the span).
 */
export const BENIGN_SOURCES: readonly string[] = [
  "-----BEGIN (?:CERTIFICATE|TRUSTED CERTIFICATE|PUBLIC KEY|RSA PUBLIC KEY|X509 CRL|CERTIFICATE REQUEST|NEW CERTIFICATE REQUEST|PGP PUBLIC KEY BLOCK|PGP SIGNATURE|PGP MESSAGE|SSH SIGNATURE)-----(?:(?!-----BEGIN )[\\s\\S]){0,65536}?-----END [A-Z0-9 ]{1,40}-----",
  "data:[a-z]{1,20}/[A-Za-z0-9.+-]{1,80};base64,[A-Za-z0-9+/=]+",
];
