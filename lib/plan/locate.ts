// Finding a bottle's plan for tools that act on a running bottle (bb-vm exec/attach,
// bb-supervise): --plan FILE, --slug SLUG (the plan.json bb-* tools keep in the state
// dir), or the plan on stdin.
import { join } from "node:path";
import { existsSync } from "node:fs";
import process from "node:process";
import { BbError, isBbError } from "../errors.ts";
import { readPlanInput, type CommonOptions } from "../cli.ts";
import { bottleDir, stateRootFrom } from "../paths.ts";
import { checkSlug } from "../prepare/slug.ts";
import { readSavedPlan } from "./io.ts";
import type { Plan, SectionName } from "./schema.ts";

export interface LocateOptions extends CommonOptions {
  slug?: string;
  stateDir?: string;
}

export async function locatePlan(o: LocateOptions, require: SectionName[] = []): Promise<Plan> {
  if (o.slug !== undefined) {
    checkSlug(o.slug, "--slug");
    if (o.plan !== undefined) throw new BbError("USAGE", "--slug and --plan both name a bottle: give one");
    const file = join(bottleDir(stateRootFrom(o.stateDir), o.slug), "plan.json");
    if (!existsSync(file)) throw new BbError("NOT_FOUND", `No bottle "${o.slug}": ${file} does not exist (bb-list shows the live bottles)`);
    try {
      return await readSavedPlan(file, require);
    } catch (e) {
      // Found by slug, a plan without the section is a bottle never started, not a step to run.
      if (isBbError(e) && e.code === "PLAN_SECTION_MISSING") {
        throw new BbError("PLAN_SECTION_MISSING", `Bottle ${o.slug} is not started (its plan ${file} has no "${String(e.details.section)}" section yet): \`just start slug=${o.slug}\` starts it`, { cause: e, details: e.details });
      }
      throw e;
    }
  }
  if (!o.plan && process.stdin.isTTY) {
    throw new BbError("USAGE", "Which bottle? Pass --slug SLUG (bb-list shows the live bottles), --plan FILE, or pipe a plan in");
  }
  return readPlanInput(o, require, "--slug SLUG");
}
