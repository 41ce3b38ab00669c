import assert from "node:assert/strict";
import process from "node:process";
import { test } from "node:test";
import { start } from "../proc.ts";
import { runsUnder } from "./ancestry.ts";

test("runsUnder() is true for this process's parent, false for a process beside it and for itself", async (t) => {
  assert.equal(await runsUnder(process.ppid), true);
  const child = start(["sleep", "30"], { stdio: "ignore" });
  t.after(() => child.kill("SIGKILL"));
  assert.equal(await runsUnder(child.pid!), false);
  assert.equal(await runsUnder(process.pid), false, "a process is not its own ancestor");
});
