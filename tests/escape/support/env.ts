// Where the escape suite's files are, and the label every docker resource it makes carries.
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { testLabels } from "../../../lib/docker/labels.ts";
import { REPO } from "../../support/tools.ts";

export { REPO };
export const ESCAPE_DIR = join(REPO, "tests", "escape");
/** The suite's manifest tree (agent "escape" in bottle "escape"). */
export const ESCAPE_BOTTLES = join(ESCAPE_DIR, "testdata", "bottles");
export const TEST_LABELS = testLabels();

/** A short random id for this test file's names. */
export const newId = () => randomBytes(3).toString("hex");
