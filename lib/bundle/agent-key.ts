// The bottle's agent key (lib/http/agent-key.ts), kept in its state dir: a bundle started
// again for a resumed bottle takes the key the agent's URLs already carry.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { BbError } from "../errors.ts";
import { createFileWhole } from "../fs-atomic.ts";
import { newAgentKey } from "../http/agent-key.ts";

export const AGENT_KEY_FILE = "agent-key";

/** The key in `bottleDir`, made (0600) when there is none; two runs at once agree on one. */
export async function bottleAgentKey(bottleDir: string): Promise<string> {
  const file = join(bottleDir, AGENT_KEY_FILE);
  await createFileWhole(file, newAgentKey());
  const key = await readFile(file, "utf8");
  if (!/^[0-9a-f]{48}$/.test(key)) throw new BbError("BUNDLE", `${file} holds no agent key (48 hex digits): remove it, and start the bottle again`);
  return key;
}
