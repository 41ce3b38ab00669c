// smolmachine-pack: turn a local docker image into a .smolmachine for smolvm (cached by
// image ID under $XDG_CACHE_HOME/bot-bottle/smolmachines) and print the artifact's path on
// stdout. Reads no plan. bb-vm calls the library (pack.ts) itself; this entry is for
// warming the cache by hand or from a just recipe.
//
//   node --import ./node_modules/tsx/dist/loader.mjs smolmachine-pack/main.ts bot-bottle-agent:latest
import { createProgram, mainOf, writeStdout } from "../lib/cli.ts";
import { openSmolvm } from "../lib/smolvm/driver.ts";
import { defaultArtifactDir, packImage } from "./pack.ts";

const program = createProgram("smolmachine-pack", "Pack a docker image into a .smolmachine artifact for smolvm (cached by image ID); print its path.", {
  example: "smolmachine-pack bot-bottle-agent:latest",
})
  .argument("<image>", "docker image reference or ID")
  .option("--cache-dir <dir>", "where artifacts are kept", defaultArtifactDir())
  .option("--smolvm <path>", "smolvm executable", "smolvm")
  .action(async (image: string, o: { cacheDir: string; smolvm: string }) => {
    const smolvm = await openSmolvm({ bin: o.smolvm });
    const r = await packImage({ image, smolvm, cacheDir: o.cacheDir });
    await writeStdout(`${r.artifact}\n`);
  });

await mainOf(program);
