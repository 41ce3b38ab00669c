// Environment for `docker run`/`docker exec` without secrets on argv: `-e NAME` (no value)
// makes the docker CLI copy NAME from its own environment, so the value travels in the
// CLI's environment (readable only by the same user) and never in argv, `ps` or the debug
// log. Names the docker CLI itself reads (its config, proxy and loader variables, PATH,
// HOME) cannot travel that way without changing how the CLI behaves, so they go as
// NAME=value on argv: they carry addresses and paths, never credentials.
import { BbError } from "../errors.ts";

const CLI_READS = /^(DOCKER_\w*|PATH|HOME|TMPDIR|LD_\w+|(HTTPS?|NO|ALL)_PROXY|(https?|no|all)_proxy)$/;
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

interface EnvArgs {
  /** `-e NAME` / `-e NAME=value` arguments. */
  args: string[];
  /** Values to put in the docker CLI's own environment. */
  childEnv: Record<string, string>;
}

export function envArgs(env: Record<string, string> = {}): EnvArgs {
  const args: string[] = [];
  const childEnv: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (!NAME.test(name)) throw new BbError("DOCKER", `Invalid environment variable name ${JSON.stringify(name)}`);
    if (CLI_READS.test(name)) {
      args.push("-e", `${name}=${value}`);
    } else {
      args.push("-e", name);
      childEnv[name] = value;
    }
  }
  return { args, childEnv };
}
