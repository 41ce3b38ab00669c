// Reading, validating and writing plans. Every tool parses its input as `unknown` and
// goes through parsePlanText(), so a wrong version or a missing section is one clear error.
import { readFile } from "node:fs/promises";
import { BbError } from "../errors.ts";
import { writeFileAtomic } from "../fs-atomic.ts";
import { readRegularFile, refusedBecause } from "../read-regular.ts";
import { PLAN_VERSION, Plan, type SectionName } from "./schema.ts";

function describeIssues(issues: { path: PropertyKey[]; message: string }[]): string {
  return issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.map(String).join(".") : "(root)"}: ${i.message}`)
    .join("; ");
}

/** Validate an already-parsed JSON value as a plan, requiring the given sections. */
export function validatePlan(value: unknown, require: SectionName[] = [], source = "plan"): Plan {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new BbError("PLAN_INVALID", `${source} is not a JSON object (pipe the output of bb-prepare into this tool, or pass --plan FILE)`);
  }
  const version = (value as { version?: unknown }).version;
  if (version !== PLAN_VERSION) {
    throw new BbError(
      "PLAN_VERSION",
      `${source} has version ${JSON.stringify(version ?? null)}; this tool reads plan version ${PLAN_VERSION} (re-run bb-prepare from the same checkout)`,
      { details: { expected: PLAN_VERSION, got: version ?? null } },
    );
  }
  const result = Plan.safeParse(value);
  if (!result.success) {
    throw new BbError("PLAN_INVALID", `${source} is not a valid plan: ${describeIssues(result.error.issues)}`, {
      details: { issues: result.error.issues.map((i) => ({ path: i.path.map(String), message: i.message })) },
    });
  }
  for (const section of require) {
    if (result.data[section] === undefined) {
      throw new BbError("PLAN_SECTION_MISSING", `${source} has no "${section}" section: run ${PRODUCER[section]} first`, {
        details: { section },
      });
    }
  }
  return withUnknownKeys(value, result.data) as Plan;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * The validated plan with the keys the schema does not know put back where they were: a
 * tool writes the whole document on, so what a later tool or a script added survives the
 * stages between (zod's parse drops them).
 */
function withUnknownKeys(raw: unknown, parsed: unknown): unknown {
  if (isRecord(raw) && isRecord(parsed)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(parsed)) out[k] = withUnknownKeys(raw[k], parsed[k]);
    // After the known ones, so the plan keeps the schema's order ("slug" second).
    // defineProperty: a "__proto__" key stays a key instead of setting the prototype.
    for (const k of Object.keys(raw)) {
      if (!Object.hasOwn(out, k)) Object.defineProperty(out, k, { value: raw[k], enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  if (Array.isArray(raw) && Array.isArray(parsed) && raw.length === parsed.length) return parsed.map((p, i) => withUnknownKeys(raw[i], p));
  return parsed;
}

const PRODUCER: Record<SectionName, string> = { bundle: "bb-bundle", vm: "bb-vm", provision: "bb-provision" };

/**
 * Refuse a plan a stage already ran on: its bottle is started, and starting it again
 * would clash with (and, rolling back, could remove) what is running.
 */
export function refuseSection(plan: Plan, section: SectionName, source = "plan"): void {
  if (plan[section] === undefined) return;
  throw new BbError(
    "PLAN_SECTION_PRESENT",
    `${source} for bottle ${plan.slug} already has a "${section}" section: ${PRODUCER[section]} already ran for it. ` +
      `Reach the running bottle with bb-vm exec/attach --slug ${plan.slug}; start a new one from bb-prepare`,
    { details: { section } },
  );
}

/** Parse plan text (stdin or a file's contents). */
export function parsePlanText(text: string, require: SectionName[] = [], source = "plan"): Plan {
  if (text.trim() === "") {
    throw new BbError("PLAN_INVALID", `${source} is empty: pipe the output of bb-prepare into this tool, or pass --plan FILE`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    // One line: V8's message may quote the input, newlines and all.
    throw new BbError("PLAN_INVALID", `${source} is not JSON: ${(e as Error).message.replace(/\s*\n\s*/g, " ")}`, { cause: e });
  }
  return validatePlan(value, require, source);
}

/** The plan in the file `--plan` names: any file you can read, a pipe included
 * (`--plan <(bb-prepare ...)`, `--plan /dev/stdin`), which is waited on as you asked. */
export function readPlanFile(path: string, require: SectionName[] = []): Promise<Plan> {
  return readPlanWith((p) => readFile(p, "utf8"), path, require);
}

/** A plan bot-bottle saved (a bottle's plan.json in its state dir), read as a regular file
 * only: a FIFO there would hold bb-prepare, bb-vm, bb-supervise and every smolmachines
 * start (lib/loopback.ts reads every bottle's), Ctrl-C and all. */
export function readSavedPlan(path: string, require: SectionName[] = []): Promise<Plan> {
  return readPlanWith(readRegularFile, path, require);
}

async function readPlanWith(read: (path: string) => Promise<string>, path: string, require: SectionName[]): Promise<Plan> {
  let text: string;
  try {
    text = await read(path);
  } catch (e) {
    throw new BbError("PLAN_INVALID", `Cannot read plan file ${path}: ${refusedBecause(e) ?? (e as Error).message}`, { cause: e });
  }
  return parsePlanText(text, require, path);
}

export function serializePlan(plan: Plan): string {
  return JSON.stringify(withUnknownKeys(plan, Plan.parse(plan)), null, 2) + "\n";
}

/** Persist the plan into the bottle's state dir (atomically) so list/cleanup/resume find it. */
export async function savePlan(plan: Plan): Promise<void> {
  await writeFileAtomic(plan.files.plan, serializePlan(plan));
}
