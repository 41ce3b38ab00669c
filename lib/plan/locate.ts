// Finding a bottle's plan for tools that act on a running bottle (bb-vm exec/attach,
// bb-supervise): --plan FILE, --slug SLUG (the plan.json bb-* tools keep in the state
// dir), or the plan on stdin.
import { join } from "node:path";
import { existsSync } from "node:fs";
import process from "node:process";
import { BbError } from "../errors.ts";
import { readPlanInput, type CommonOptions } from "../cli.ts";
import { bottleDir, stateRootFrom } from "../paths.ts";
import { checkSlug } from "../prepare/slug.ts";
import { readPlanFile } from "./io.ts";
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
    return readPlanFile(file, require);
  }
  if (!o.plan && process.stdin.isTTY) {
    throw new BbError("USAGE", "Which bottle? Pass --slug SLUG (bb-list shows the live bottles), --plan FILE, or pipe a plan in");
  }
  return readPlanInput(o, require, "--slug SLUG");
}
