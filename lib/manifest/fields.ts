// Typed readers for frontmatter values. Every failure is a BbError that names the file
// and the field path (`egress[0].auth`), so a user knows exactly what to fix.
import { BbError, type ErrorCode } from "../errors.ts";
import { printable } from "../printable.ts";
import { reservedEnvReason } from "./reserved-env.ts";
import { didYouMean } from "./suggest.ts";

export class FieldReader {
  constructor(readonly file: string) {}

  fail(field: string, message: string, code: ErrorCode = "MANIFEST_INVALID"): never {
    throw new BbError(code, `${this.file}: field "${field}": ${message}`, { details: { file: this.file, field } });
  }

  typeError(field: string, expected: string, got: unknown): never {
    this.fail(field, `must be ${expected}, got ${describe(got)}`, "MANIFEST_TYPE");
  }

  /** Reject keys outside `allowed`, suggesting the nearest valid one. */
  checkKeys(obj: Record<string, unknown>, allowed: readonly string[], where = ""): void {
    for (const key of Object.keys(obj)) {
      if (!allowed.includes(key)) {
        const field = where ? `${where}.${key}` : key;
        this.fail(field, `unknown key${didYouMean(key, allowed)}; valid keys: ${allowed.join(", ")}`, "MANIFEST_UNKNOWN_KEY");
      }
    }
  }

  object(field: string, v: unknown): Record<string, unknown> {
    if (typeof v !== "object" || v === null || Array.isArray(v)) this.typeError(field, "a mapping", v);
    return v as Record<string, unknown>;
  }

  string(field: string, v: unknown): string {
    if (typeof v !== "string") this.typeError(field, "a string", v);
    return v;
  }

  nonEmptyString(field: string, v: unknown): string {
    const s = this.string(field, v);
    if (s.trim() === "") this.fail(field, "must not be empty");
    return s;
  }

  /** `s`, refused when it holds a control character (a newline, ESC, a bidi override):
   * shown on a terminal it could redraw the lines around it, and written into a config
   * file it could start lines of its own. */
  oneLine(field: string, s: string): string {
    const c = CONTROL.exec(s)?.[0];
    if (c !== undefined) this.fail(field, `holds a control character (${printable(c)}): write it as one line of plain text`);
    return s;
  }

  /** A string for people (a name, a description): trimmed, then one line of plain text. */
  line(field: string, v: unknown): string {
    return this.oneLine(field, this.string(field, v).trim());
  }

  boolean(field: string, v: unknown): boolean {
    if (typeof v !== "boolean") this.typeError(field, "true or false", v);
    return v;
  }

  list(field: string, v: unknown): unknown[] {
    if (!Array.isArray(v)) this.typeError(field, "a list", v);
    return v;
  }

  stringList(field: string, v: unknown): string[] {
    return this.list(field, v).map((item, i) => this.nonEmptyString(`${field}[${i}]`, item));
  }

  /** The agent's environment: env var names to string values (numbers and booleans must
   * be quoted), no name bot-bottle keeps for itself (reserved-env.ts). */
  envMap(field: string, v: unknown): Record<string, string> {
    const obj = this.object(field, v);
    const out: Record<string, string> = {};
    for (const [k, val] of Object.entries(obj)) {
      if (!ENV_NAME.test(k)) this.fail(`${field}.${k}`, "is not a valid environment variable name (letters, digits, _; not starting with a digit)");
      this.notReserved(`${field}.${k}`, k, "leave it out");
      if (typeof val !== "string") {
        const hint = typeof val === "number" || typeof val === "boolean" ? ` (quote it: "${String(val)}")` : "";
        this.fail(`${field}.${k}`, `must be a string, got ${describe(val)}${hint}`, "MANIFEST_TYPE");
      }
      out[k] = this.oneLine(`${field}.${k}`, val);
    }
    return out;
  }

  /** Refuse `name` as a variable of the agent's environment when it is reserved. */
  notReserved(field: string, name: string, fix: string): void {
    const why = reservedEnvReason(name);
    if (why !== null) this.fail(field, `${name} cannot be set in the bottle: ${why}; ${fix}`);
  }

  oneOf<T extends string>(field: string, v: unknown, options: readonly T[], noun = "value"): T {
    const s = this.string(field, v);
    if (!options.includes(s as T)) this.fail(field, `unknown ${noun} "${s}"${didYouMean(s, options)}; one of ${options.join(", ")}`);
    return s as T;
  }
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** C0 (newline and tab included), DEL, C1, line separators, bidi embeddings, overrides
 * and isolates. */
const CONTROL = /[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;

/** Hostnames and "*.suffix" wildcards (lower-case letters, digits, dashes, dots). */
export const HOST_PATTERN = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

function describe(v: unknown): string {
  if (v === null || v === undefined) return "nothing";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string") return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v)}`;
  return `${typeof v} ${String(v)}`;
}
