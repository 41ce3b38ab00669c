// The bottle's agent key (lib/http/agent-key.ts), kept in its state dir: a bundle started
// again for a resumed bottle takes the key the agent's URLs already carry. The plan names
// the file (bundle.agentKeyFile), never the key: its URLs are without it, and the tools
// that hand them to the agent (bb-provision) put it in as they do.
import { join } from "node:path";
import { BbError } from "../errors.ts";
import { createFileWhole } from "../fs-atomic.ts";
import { keyedAgentUrls, newAgentKey, type AgentUrls } from "../http/agent-key.ts";
import { readRegularFile, refusedBecause } from "../read-regular.ts";

export const AGENT_KEY_FILE = "agent-key";

/** The key in `file`; refused, naming the file, when it holds none or is no regular file
 * (a FIFO there would hold bb-bundle and bb-provision, Ctrl-C and all). */
async function readAgentKey(file: string): Promise<string> {
  const key = await readRegularFile(file).catch((e: NodeJS.ErrnoException) => {
    const why = refusedBecause(e);
    if (why) throw new BbError("STATE", `Cannot read the bottle's agent key ${file}: ${why}: remove it, and start the bottle again`, { cause: e });
    throw new BbError("STATE", `Cannot read the bottle's agent key ${file}: ${e.code === "ENOENT" ? "it is gone" : e.message} (bb-bundle makes it; start the bottle again)`, { cause: e });
  });
  if (!/^[0-9a-f]{48}$/.test(key)) throw new BbError("BUNDLE", `${file} holds no agent key (48 hex digits): remove it, and start the bottle again`);
  return key;
}

/** The key in `bottleDir`, made (0600) when there is none; two runs at once agree on one. */
export async function bottleAgentKey(bottleDir: string): Promise<string> {
  const file = join(bottleDir, AGENT_KEY_FILE);
  await createFileWhole(file, newAgentKey());
  return readAgentKey(file);
}

/** The URLs the agent is given: the plan's, with the key from `agentKeyFile` when the
 * bundle has one (smolmachines); a plan from before the key was kept out of plans has it
 * in its URLs already, and a docker bundle needs none. */
export async function agentUrlsWithKey(bundle: { agentUrls: AgentUrls; agentKeyFile?: string | null }): Promise<AgentUrls> {
  return bundle.agentKeyFile ? keyedAgentUrls(bundle.agentUrls, await readAgentKey(bundle.agentKeyFile)) : bundle.agentUrls;
}
