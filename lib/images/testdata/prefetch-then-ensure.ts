// Test entry (agent.docker.test.ts): prefetch the agent image lookup, then ensure the
// image, with every subprocess's argv logged on stderr (lib/proc.ts at debug level).
import { setLogLevel } from "../../log.ts";
import { writeStdout } from "../../cli.ts";
import { ensureImage, prefetchAgentImage } from "../mod.ts";

setLogLevel("debug");
prefetchAgentImage();
await writeStdout(`${(await ensureImage("agent")).ref}\n`);
