// Typed readers for frontmatter values. Every failure is a BbError that names the file
// and the field path (`egress[0].auth`), so a user knows exactly what to fix.
import { BbError, type ErrorCode } from "../errors.ts";
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

  /** A mapping of env var names to string values; numbers and booleans must be quoted. */
  envMap(field: string, v: unknown): Record<string, string> {
    const obj = this.object(field, v);
    const out: Record<string, string> = {};
    for (const [k, val] of Object.entries(obj)) {
      if (!ENV_NAME.test(k)) this.fail(`${field}.${k}`, "is not a valid environment variable name (letters, digits, _; not starting with a digit)");
      if (typeof val !== "string") {
        const hint = typeof val === "number" || typeof val === "boolean" ? ` (quote it: "${String(val)}")` : "";
        this.fail(`${field}.${k}`, `must be a string, got ${describe(val)}${hint}`, "MANIFEST_TYPE");
      }
      out[k] = val;
    }
    return out;
  }

  oneOf<T extends string>(field: string, v: unknown, options: readonly T[], noun = "value"): T {
    const s = this.string(field, v);
    if (!options.includes(s as T)) this.fail(field, `unknown ${noun} "${s}"${didYouMean(s, options)}; one of ${options.join(", ")}`);
    return s as T;
  }
}

export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Hostnames and "*.suffix" wildcards (lower-case letters, digits, dashes, dots). */
export const HOST_PATTERN = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

export function describe(v: unknown): string {
  if (v === null || v === undefined) return "nothing";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string") return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v)}`;
  return `${typeof v} ${String(v)}`;
}
