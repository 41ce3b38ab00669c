// The two images bot-bottle builds (the sidecar bundle and the agent), built on first use
// and reused while their inputs are unchanged.
export { ensureImage, prefetchAgentImage } from "./ensure.ts";
