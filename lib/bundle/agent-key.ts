// The bottle's agent key (lib/http/agent-key.ts), kept in its state dir: a bundle started
// again for a resumed bottle takes the key the agent's URLs already carry.
import { link, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { BbError } from "../errors.ts";
import { newAgentKey } from "../http/agent-key.ts";

export const AGENT_KEY_FILE = "agent-key";

/** The key in `bottleDir`, made (0600) when there is none. Two runs at once agree: the
 * key is written whole to a file of its own, then linked into place, which only one can. */
export async function bottleAgentKey(bottleDir: string): Promise<string> {
  const file = join(bottleDir, AGENT_KEY_FILE);
  const tmp = `${file}.${randomBytes(6).toString("hex")}`;
  await writeFile(tmp, newAgentKey(), { mode: 0o600, flag: "wx" });
  try {
    await link(tmp, file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  } finally {
    await rm(tmp, { force: true });
  }
  const key = await readFile(file, "utf8");
  if (!/^[0-9a-f]{48}$/.test(key)) throw new BbError("BUNDLE", `${file} holds no agent key (48 hex digits): remove it, and start the bottle again`);
  return key;
}
