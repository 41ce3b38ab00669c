// The labels every docker resource bot-bottle creates carries. bb-list and bb-cleanup find
// resources by these labels, never by guessing from names, so every create goes through
// `bottleLabels()`.
import process from "node:process";
import { BbError } from "../errors.ts";

/** Label keys. `root` marks anything of ours; `test` marks resources a test created. */
export const LABEL = {
  root: "bot-bottle",
  slug: "bot-bottle.slug",
  backend: "bot-bottle.backend",
  agent: "bot-bottle.agent",
  role: "bot-bottle.role",
  /** The state root of the bottle's state dir: bb-list and bb-cleanup judge only their own
   * root's bottles (another root's state dir is not theirs to read). */
  stateRoot: "bot-bottle.state-root",
  test: "bot-bottle.test",
  /** The test suite run that made a test resource (scripts/test.mjs sets $BB_TEST_SUITE), so
   * its end-of-run leak sweep removes its own run's leftovers and never another run's. */
  testSuite: "bot-bottle.test-suite",
} as const;

/** The labels of a resource a test makes: `bot-bottle.test=1`, and the suite run's id when
 * one runs it. */
export function testLabels(env: Record<string, string | undefined> = process.env): Record<string, string> {
  const suite = env.BB_TEST_SUITE;
  return { [LABEL.test]: "1", ...(suite ? { [LABEL.testSuite]: suite } : {}) };
}

/** testLabels() for what bb-bundle and bb-vm create when a test runs them with
 * $BB_TEST_LABEL set; nothing otherwise. */
export function testLabelsIfAsked(env: Record<string, string | undefined> = process.env): Record<string, string> | undefined {
  return env.BB_TEST_LABEL ? testLabels(env) : undefined;
}

export type Role = "bundle" | "agent" | "network-internal" | "network-egress" | "volume-git-gate";
export type BackendName = "docker" | "smolmachines";

interface BottleLabelInput {
  slug: string;
  backend: BackendName;
  agent: string;
  /** The plan's state root (absolute); null only for a resource of no state root. */
  stateRoot: string | null;
  role: Role;
  /** More labels (a test adds `bot-bottle.test=1`). */
  extra?: Record<string, string>;
}

// `docker ps --format` joins labels as "k=v,k=v", so a comma in a value would make the
// list unparseable; values are names and slugs, which never need one.
const VALUE = /^[^,\n]*$/;

/** The full label set of one bottle resource. */
export function bottleLabels(input: BottleLabelInput): Record<string, string> {
  const labels: Record<string, string> = {
    [LABEL.root]: "1",
    [LABEL.slug]: input.slug,
    [LABEL.backend]: input.backend,
    [LABEL.agent]: input.agent,
    [LABEL.role]: input.role,
    ...(input.stateRoot === null ? {} : { [LABEL.stateRoot]: encodeLabelValue(input.stateRoot) }),
    ...(input.extra ?? {}),
  };
  for (const [k, v] of Object.entries(labels)) {
    if (!VALUE.test(v)) throw new BbError("DOCKER", `Label ${k}=${JSON.stringify(v)} may not contain a comma or newline`);
  }
  return labels;
}

/** A path as a label value: `%`, `,` and newlines percent-encoded (docker's label list is
 * comma-joined, one per line); any other path reads as it is in `docker inspect`. */
export function encodeLabelValue(text: string): string {
  return text.replace(/[%,\n]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, "0").toUpperCase()}`);
}

export function decodeLabelValue(text: string): string {
  return text.replace(/%(25|2C|0A)/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** `--label k=v` pairs for docker create/run/network create. */
export function labelArgs(labels: Record<string, string>): string[] {
  return Object.entries(labels).flatMap(([k, v]) => ["--label", `${k}=${v}`]);
}

/** `--filter label=k=v` pairs (or `label=k` when the value is undefined). */
export function labelFilterArgs(filter: Record<string, string | undefined>): string[] {
  return Object.entries(filter).flatMap(([k, v]) => ["--filter", v === undefined ? `label=${k}` : `label=${k}=${v}`]);
}

/** Parse the "k=v,k2=v2" label string of `docker ps`/`docker network ls` JSON lines. */
export function parseLabelString(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!text) return out;
  for (const pair of text.split(",")) {
    const i = pair.indexOf("=");
    if (i === -1) out[pair] = "";
    else out[pair.slice(0, i)] = pair.slice(i + 1);
  }
  return out;
}
