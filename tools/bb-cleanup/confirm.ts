// The one y/N question bb-cleanup asks, on the terminal: the prompt on stderr, the answer
// from stdin (only called when stdin is a TTY). Anything but y/yes is no.
import process from "node:process";
import { createInterface } from "node:readline";

export async function confirm(question: string): Promise<boolean> {
  process.stderr.write(`${question} [y/N] `);
  const rl = createInterface({ input: process.stdin, terminal: false });
  const answer = await new Promise<string>((resolve) => {
    rl.once("line", resolve);
    rl.once("close", () => resolve(""));
  });
  rl.close();
  // Let the process exit: readline leaves the TTY stream flowing.
  process.stdin.pause();
  return /^\s*y(es)?\s*$/i.test(answer);
}
