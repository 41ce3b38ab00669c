// Every version the images pin, in one place. Bumping a CLI here changes the agent image's
// tag, so the next start builds a fresh image and stages the new packages once.

/** The base of both images; scripts/ensure-base-image.sh makes it where no registry is reachable. */
export const BASE_IMAGE = "debian:bookworm-slim";

/** The agent CLIs, as published on npm. Each ships its real program as a native binary in a
 * per-platform package named in its optionalDependencies. */
export const AGENT_CLIS = {
  claude: { package: "@anthropic-ai/claude-code", version: "2.1.330" },
  codex: { package: "@openai/codex", version: "0.169.0" },
} as const;

/** Image repositories; the tag is a hash of what goes into the build. */
export const IMAGE_REPO = {
  sidecar: "bot-bottle/sidecar",
  agent: "bot-bottle/agent",
} as const;

export type ImageName = keyof typeof IMAGE_REPO;
