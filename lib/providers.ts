// What each provider runs inside the bottle, and how it is told about the prompt.
import { AGENT } from "./layout.ts";
import type { Plan } from "./plan/schema.ts";

/** argv of the interactive agent (bb-vm attach). */
export function agentCommand(plan: Plan): string[] {
  switch (plan.agent.provider) {
    case "claude":
      return ["claude", ...(plan.agent.hasPrompt ? ["--append-system-prompt-file", AGENT.promptFile] : [])];
    case "codex":
      // codex reads ~/.codex/AGENTS.md as global instructions; bb-provision puts the prompt there.
      return ["codex"];
    case "shell":
      return ["bash", "-l"];
  }
}
