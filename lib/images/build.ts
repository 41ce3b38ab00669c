// `docker build` with its output streamed line by line to the logger, so a first start
// that builds an image for minutes shows what it is doing.
import { BbError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { showArgv, start } from "../proc.ts";
import { labelArgs } from "../docker/labels.ts";

interface BuildOptions {
  ref: string;
  dockerfile: string;
  contextDir: string;
  labels?: Record<string, string>;
  logger: Logger;
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;

export function buildImage(opts: BuildOptions): Promise<void> {
  const argv = ["docker", "build", "--tag", opts.ref, ...labelArgs(opts.labels ?? {}), "--file", opts.dockerfile, opts.contextDir];
  const recent: string[] = [];
  const forward = (raw: string) => {
    // A terminal would show only what follows the last \r (progress redraws), and the
    // legacy builder colours a RUN step's stderr; keep the plain text.
    const line = (raw.split("\r").pop() ?? "").replace(ANSI, "");
    if (!line.trim()) return;
    opts.logger.info(line);
    recent.push(line);
    if (recent.length > 30) recent.shift();
  };
  return new Promise((resolve, reject) => {
    const child = start(argv, { stdio: ["ignore", "pipe", "pipe"] });
    for (const stream of [child.stdout!, child.stderr!]) {
      let pending = "";
      stream.setEncoding("utf8");
      stream.on("data", (chunk: string) => {
        const lines = (pending + chunk).split("\n");
        pending = lines.pop() ?? "";
        lines.forEach(forward);
      });
      stream.on("end", () => forward(pending));
    }
    child.on("error", (e) =>
      reject(new BbError("DOCKER", `Cannot build image ${opts.ref}: cannot run docker: ${e.message}`, { cause: e, details: { argv } })),
    );
    child.on("close", (code, signal) => {
      if (code === 0) return resolve();
      const how = code === null ? `was killed by ${signal}` : `exited ${code}`;
      reject(
        new BbError("DOCKER", `Cannot build image ${opts.ref}: ${showArgv(argv)} ${how}:\n${recent.slice(-10).join("\n")}`, {
          details: { argv, exitCode: code, output: recent.join("\n") },
        }),
      );
    });
  });
}
