// Parsing one agent file: which provider runs, in which bottle, with which skills, env
// and options; the markdown body is the agent's system prompt.
import type { Provider } from "../plan/schema.ts";
import { FieldReader } from "./fields.ts";
import type { Frontmatter } from "./frontmatter.ts";

const AGENT_KEYS = ["provider", "bottle", "description", "skills", "env", "forward_host_credentials"] as const;
const PROVIDERS = ["claude", "codex", "shell"] as const satisfies readonly Provider[];

export interface AgentDecl {
  name: string;
  file: string;
  provider: Provider;
  bottle: string;
  description: string | null;
  skills: string[];
  env: Record<string, string>;
  forwardHostCredentials: boolean;
  prompt: string;
}

export function parseAgent(name: string, fm: Frontmatter): AgentDecl {
  const r = new FieldReader(fm.file);
  const d = fm.data;
  r.checkKeys(d, AGENT_KEYS);
  if (!("provider" in d)) r.fail("provider", `is required (one of ${PROVIDERS.join(", ")})`);
  if (!("bottle" in d)) r.fail("bottle", "is required: the name of a bottle in bottles/");
  const skills = "skills" in d ? r.stringList("skills", d.skills ?? []) : [];
  skills.forEach((s, i) => {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(s)) r.fail(`skills[${i}]`, `"${s}" is not a skill folder name`);
  });
  return {
    name,
    file: fm.file,
    provider: r.oneOf("provider", d.provider, PROVIDERS, "provider"),
    bottle: r.nonEmptyString("bottle", d.bottle),
    description: "description" in d ? r.line("description", d.description) : null,
    skills,
    env: "env" in d ? r.envMap("env", d.env ?? {}) : {},
    forwardHostCredentials: "forward_host_credentials" in d ? r.boolean("forward_host_credentials", d.forward_host_credentials) : false,
    prompt: fm.body,
  };
}
