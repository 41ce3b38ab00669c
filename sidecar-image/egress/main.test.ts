// egress as a process: what it refuses before it listens.
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { run } from "../../lib/proc.ts";
import { REPO_ROOT, tsNodeArgv } from "../../tests/support/daemon-process.ts";
import { fifo } from "../../tests/support/fifo.ts";
import { tempDir } from "../../tests/support/tmp.ts";

test("a FIFO given as --extra-ca is refused at once, naming the flag and the file (reading it would wait for a writer forever)", async (t) => {
  const pipe = join(await tempDir(t), "ca.pem");
  await fifo(t, pipe);
  const r = await run(tsNodeArgv(`${REPO_ROOT}sidecar-image/egress/main.ts`, ["--listen", "127.0.0.1:0", "--extra-ca", pipe]), { expect: [1], timeoutMs: 20_000 });
  assert.match(r.stderr, new RegExp(`Cannot read --extra-ca ${pipe}: it is a FIFO, not a regular file`));
});
