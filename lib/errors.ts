// One error type for the whole project: a stable `code` scripts can branch on, the exit
// code `main` returns, structured details, and the original cause. Nothing deep in the
// code calls process.exit; it throws (or returns) a BbError and main maps it.

/** The one exit-code table, shown in every tool's --help. */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  invalidPlan: 3,
  invalidManifest: 4,
  timeout: 124,
  /** bb-vm exec and attach: the bottle could not run the command at all (its agent
   * container is gone, stopped or paused), as docker run's 125; otherwise they exit with its code. */
  notRun: 125,
  interrupted: 130,
} as const;

type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The exit-code table for a tool's --help: the plan and manifest rows only where it reads one. */
export function exitTableText(reads: { plan?: boolean; manifest?: boolean } = {}): string {
  return [
    "Exit codes:",
    "  0    ok",
    "  1    failure (the message says what failed and what to try)",
    "  2    usage error (bad flag or argument)",
    ...(reads.plan ? ["  3    invalid plan on stdin / --plan"] : []),
    ...(reads.manifest ? ["  4    invalid manifest (the message names the file and the field)"] : []),
    "  124  timed out",
    "  130  interrupted",
  ].join("\n");
}

/** Stable error codes. Add here; never reuse a code for another meaning. */
export type ErrorCode =
  | "USAGE"
  | "PLAN_INVALID"
  | "PLAN_VERSION"
  | "PLAN_SECTION_MISSING"
  | "PLAN_SECTION_PRESENT"
  | "MANIFEST_NOT_FOUND"
  | "MANIFEST_PARSE"
  | "MANIFEST_UNKNOWN_KEY"
  | "MANIFEST_TYPE"
  | "MANIFEST_EXTENDS"
  | "MANIFEST_INVALID"
  | "STATE"
  | "BUSY"
  | "SLUG_TAKEN"
  | "SUBPROCESS"
  | "DOCKER"
  | "SMOLVM"
  | "BUNDLE"
  | "VM"
  | "PROVISION"
  | "TLS"
  | "CONFIG"
  | "TIMEOUT"
  | "INTERRUPTED"
  | "NOT_FOUND"
  | "INTERNAL"
  | "PACK";

const DEFAULT_EXIT: Partial<Record<ErrorCode, ExitCode>> = {
  USAGE: EXIT.usage,
  PLAN_INVALID: EXIT.invalidPlan,
  PLAN_VERSION: EXIT.invalidPlan,
  PLAN_SECTION_MISSING: EXIT.invalidPlan,
  PLAN_SECTION_PRESENT: EXIT.invalidPlan,
  MANIFEST_NOT_FOUND: EXIT.invalidManifest,
  MANIFEST_PARSE: EXIT.invalidManifest,
  MANIFEST_UNKNOWN_KEY: EXIT.invalidManifest,
  MANIFEST_TYPE: EXIT.invalidManifest,
  MANIFEST_EXTENDS: EXIT.invalidManifest,
  MANIFEST_INVALID: EXIT.invalidManifest,
  TIMEOUT: EXIT.timeout,
  INTERRUPTED: EXIT.interrupted,
};

interface BbErrorOptions {
  details?: Record<string, unknown>;
  cause?: unknown;
  exitCode?: ExitCode;
}

export class BbError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: ExitCode;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: BbErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "BbError";
    this.code = code;
    this.exitCode = options.exitCode ?? DEFAULT_EXIT[code] ?? EXIT.failure;
    this.details = { ...(options.details ?? {}) };
  }

  /** The JSON error object printed with --json-errors. */
  toJSON(): Record<string, unknown> {
    return { error: { code: this.code, message: this.message, exitCode: this.exitCode, details: this.details } };
  }
}

export function isBbError(e: unknown): e is BbError {
  return e instanceof BbError;
}

/** Wrap anything thrown into a BbError, keeping an existing one as it is. */
export function toBbError(e: unknown, code: ErrorCode = "INTERNAL"): BbError {
  if (e instanceof BbError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new BbError(code, message, { cause: e });
}
