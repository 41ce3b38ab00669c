// The two images bot-bottle builds (the sidecar bundle and the agent), built on first use
// and reused while their inputs are unchanged.
export { agentTag, archOf, ensureImage, type EnsuredImage, type EnsureImageOptions, prefetchAgentImage } from "./ensure.ts";
export { ensureBaseImage } from "./base.ts";
export { stageAgentTools, stageKey, type AgentArch, type StagedTools, type StageOptions } from "./agent-stage.ts";
export { AGENT_CLIS, BASE_IMAGE, IMAGE_REPO, type ImageName } from "./versions.ts";
