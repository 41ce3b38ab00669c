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
  /**
   * For what a regex could only say by backtracking (which one crafted text can make take
   * quadratic time): a fresh function per text scanned that tells where a match the regex
   * only began really ends, reading the text after it (`end`), or null when there is no
   * match after all. It may remember what it read of that one text.
   */
  follow?: () => (text: string, end: number) => number | null;
  /** A safe excerpt when the generic one (a few leading characters) says too little. */
  excerpt?: (match: string) => string;
}

/** Case-insensitive spelling of a literal, for the few patterns keyed by a field name
 * (the combined regex has no `i` flag: that would slow every other alternative). */
function ci(word: string): string {
  return [...word].map((c) => (/[a-z]/i.test(c) ? `[${c.toLowerCase()}${c.toUpperCase()}]` : c.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&"))).join("");
}

const SEP = "[_.-]?";

// The regex finds the header; keyBody (below) requires a key body after it (the header
// alone is common in code and docs) and claims the whole block up to its END line, so
// its base64 lines are not reported again.
const PRIVATE_KEY = "-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----";
const pemHeader = (match: string) => match.slice(match.indexOf("-----BEGIN"), match.indexOf("-----", match.indexOf("-----BEGIN") + 10) + 5);

/** Where the body must start (at most this far after the header), how long a base64 run
 * makes one, and how far the END line may come after it. */
const BODY_WITHIN = 200;
const BODY_RUN = 40;
const END_WITHIN = 16384;
const PEM_END = /-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----/g;
const isBase64Char = (c: number) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 43 || c === 47;

/**
 * After a private key header: a run of 40 base64 characters starting within 200 of it
 * (one linear walk), then the block through its END line when that comes within 16 KiB.
 * Null when no body follows. The END line last found is kept: many headers before one
 * END line must not each search the same text again.
 */
function keyBody(): (text: string, end: number) => number | null {
  let last: { from: number; found: { at: number; end: number } | null } | null = null;
  const nextEndLine = (text: string, from: number) => {
    if (last && last.from <= from && (last.found === null || last.found.at >= from)) return last.found;
    PEM_END.lastIndex = from;
    const m = PEM_END.exec(text);
    last = { from, found: m ? { at: m.index, end: m.index + m[0].length } : null };
    return last.found;
  };
  return (text, end) => {
    let run = 0;
    let bodyEnd = -1;
    const limit = Math.min(text.length, end + BODY_WITHIN + BODY_RUN);
    for (let i = end; i < limit; i++) {
      if (!isBase64Char(text.charCodeAt(i))) run = 0;
      else if (++run === BODY_RUN) {
        bodyEnd = i + 1;
        break;
      }
    }
    if (bodyEnd === -1) return null;
    const endLine = nextEndLine(text, bodyEnd);
    return endLine && endLine.at <= bodyEnd + END_WITHIN ? endLine.end : bodyEnd;
  };
}
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
  {
    detector: "gcp",
    label: "GCP service-account private key",
    source: `"private_key\\\\?"\\s{0,3}:\\s{0,3}\\\\?"${PRIVATE_KEY}`,
    follow: keyBody,
    excerpt: pemHeader,
  },
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
  { detector: "private_key", label: "PEM private key", source: PRIVATE_KEY, follow: keyBody, excerpt: pemHeader },
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
