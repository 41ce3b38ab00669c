import assert from "node:assert/strict";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { OWNER_FILE, writeOwner } from "../inventory/owner.ts";
import { makeTestBottle } from "../supervise/testdata/bottle.ts";
import { goneMessage, TEARING_DOWN_FILE } from "./gone.ts";

test("goneMessage() offers a rebuild only while nobody is tearing the bottle down and its saved plan is there", async (t) => {
  const b = await makeTestBottle();
  t.after(() => b.remove());
  const plan = { ...b.plan, vm: { name: "bb-shell-t3st-agent" } };
  const dir = plan.files.dir;

  // Kept, or its flow killed: the state is there to rebuild from.
  assert.equal(await goneMessage(plan, "is stopped"), "bottle shell-t3st: its agent container bb-shell-t3st-agent is stopped; `just start slug=shell-t3st` rebuilds it, `bb-cleanup --slug shell-t3st` removes it");
  await writeFile(join(dir, OWNER_FILE), JSON.stringify({ pid: 2 ** 22 + 1, startedAt: new Date().toISOString() }));
  assert.match((await goneMessage(plan, "is gone"))!, /rebuilds it/, "a dead flow's record does not tear anything down");

  // A live start flow owns it: its teardown is under way and takes the state dir with it.
  await writeOwner(dir, process.pid);
  assert.equal(await goneMessage(plan, "is stopped"), `bottle shell-t3st: its agent container bb-shell-t3st-agent is stopped: the start flow pid ${process.pid} that owns it is tearing it down, state dir and all, so nothing is left to resume; \`just start agent=${plan.agent.name}\` starts a new one`);
  // ...unless that flow is the one this session belongs to: then someone else removed it,
  // and the flow's teardown has not begun.
  assert.equal(await goneMessage(plan, "is gone", { parentPid: process.pid }), `bottle shell-t3st: its agent container bb-shell-t3st-agent is gone, not by this start flow (docker rm, or bb-cleanup --slug shell-t3st); the flow now tears the rest of the bottle down, state dir and all; \`just start agent=${plan.agent.name}\` starts a new one`);
  assert.match((await goneMessage(plan, "is stopped", { parentPid: process.pid }))!, /is stopped, not by this start flow \(docker stop or kill, or the Docker engine restarted\)/);
  // ...and that flow's own teardown (a Ctrl-C, a kill of the flow) says so itself.
  await mkdir(join(dir, "flow"), { recursive: true });
  await writeFile(join(dir, TEARING_DOWN_FILE), "");
  assert.equal(await goneMessage(plan, "is gone", { parentPid: process.pid }), null);
  assert.match((await goneMessage(plan, "is gone"))!, /the start flow pid \d+ that owns it is tearing it down/, "another session's flow");

  // Gone whole.
  await rm(dir, { recursive: true });
  assert.equal(await goneMessage(plan, "is gone"), `bottle shell-t3st: its agent container bb-shell-t3st-agent is gone; the bottle was removed (its state dir ${dir} is gone): \`just start agent=${plan.agent.name}\` starts a new one`);
});
