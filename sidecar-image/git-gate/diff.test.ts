import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { run } from "../../lib/proc.ts";
import { addedOver, commitChanges, droppedPaths, parsePatch, type Git } from "./diff.ts";

describe("parsePatch()", () => {
  it("frames hunks by their counts, so an added line that looks like a header is content", () => {
    const patch = [
      "diff --git a/x.txt b/x.txt",
      "--- a/x.txt",
      "+++ b/x.txt",
      "@@ -1,2 +1,3 @@",
      " keep",
      "-old",
      "+++ b/smuggled",
      "+diff --git a/y b/y",
      "\\ No newline at end of file",
      "diff --git a/with space.md b/with space.md",
      "new file mode 100644",
      "--- /dev/null",
      "+++ b/with space.md",
      "@@ -0,0 +1 @@",
      "+hello",
      'diff --git "a/tab\\there\\303\\251" "b/tab\\there\\303\\251"',
      "Binary files differ",
      "",
    ].join("\n");
    assert.deepEqual(
      [...parsePatch(patch)],
      [
        ["x.txt", ["++ b/smuggled", "diff --git a/y b/y"]],
        ["with space.md", ["hello"]],
        ["tab\thereé", []],
      ],
    );
  });
});

describe("commitChanges() on real commits", () => {
  let dir: string;
  const env = () => ({ GIT_CONFIG_GLOBAL: join(dir, "gc"), GIT_CONFIG_NOSYSTEM: "1" });
  const sh = async (...args: string[]) => (await run(["git", ...args], { cwd: join(dir, "r"), env: env() })).stdout.trim();
  const git: Git = async (args) => (await run(["git", ...args], { cwd: join(dir, "r"), env: env() })).stdout;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bb-diff-test-"));
    await writeFile(join(dir, "gc"), "[user]\n\tname = T\n\temail = t@example.test\n[init]\n\tdefaultBranch = main\n");
    await run(["git", "init", "-q", join(dir, "r")], { env: env() });
    await writeFile(join(dir, "r/base.txt"), "base\n");
    await sh("add", "-A");
    await sh("commit", "-q", "-m", "base");
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("a root commit adds all its lines; the message and the header lines are read", async () => {
    const root = await sh("rev-list", "--max-parents=0", "HEAD");
    const ch = await commitChanges(git, root);
    assert.deepEqual(ch.paths, ["base.txt"]);
    assert.deepEqual(ch.added.get("base.txt"), ["base"]);
    assert.equal(ch.message, "base\n");
    assert.match(ch.header, /^tree [0-9a-f]{40}\nauthor T <t@example\.test> \d+ [+-]\d{4}\ncommitter T <t@example\.test> \d+ [+-]\d{4}$/);
  });

  it("a clean merge introduces nothing of its own; a conflict resolution only its new lines", async () => {
    await sh("checkout", "-q", "-b", "side");
    await writeFile(join(dir, "r/side.txt"), "from side\n");
    await writeFile(join(dir, "r/base.txt"), "base\nside edit\n");
    await sh("commit", "-q", "-am", "side");
    await sh("add", "side.txt");
    await sh("commit", "-q", "-m", "side file");
    await sh("checkout", "-q", "main");
    await writeFile(join(dir, "r/main.txt"), "from main\n");
    await sh("add", "main.txt");
    await sh("commit", "-q", "-m", "main file");
    await sh("merge", "-q", "--no-edit", "--no-ff", "side");
    const clean = await commitChanges(git, await sh("rev-parse", "HEAD"));
    assert.deepEqual(clean.paths, []);

    await sh("reset", "-q", "--hard", "HEAD~1");
    await writeFile(join(dir, "r/base.txt"), "base\nmain edit\n");
    await sh("commit", "-q", "-am", "main edit");
    await run(["git", "merge", "-q", "--no-edit", "side"], { cwd: join(dir, "r"), env: env(), expect: [1] });
    await writeFile(join(dir, "r/base.txt"), "base\nside edit\nresolved by hand\n");
    await sh("commit", "-q", "-am", "merge");
    const resolved = await commitChanges(git, await sh("rev-parse", "HEAD"));
    assert.deepEqual(resolved.paths, ["base.txt"]);
    assert.deepEqual(resolved.added.get("base.txt"), ["resolved by hand"]);
  });

  it("a merge that keeps one parent's version of a path the other parent changed touches it, though it adds no line", async () => {
    const commitTree = async (tree: string, ...parents: string[]) => sh("commit-tree", tree, ...parents.flatMap((p) => ["-p", p]), "-m", "merge");
    const before = await sh("rev-parse", "HEAD");
    await writeFile(join(dir, "r/base.txt"), "base\nhardened\n");
    await sh("commit", "-q", "-am", "harden");
    const hardened = await sh("rev-parse", "HEAD");

    // "Merging" the commit before the change, keeping its tree: the change is undone.
    const undo = await commitChanges(git, await commitTree(await sh("rev-parse", `${before}^{tree}`), hardened, before));
    assert.deepEqual([undo.paths, [...undo.added.keys()]], [["base.txt"], []]);

    // Merging a new root commit that lacks the file, and dropping it: the file is gone.
    await run(["git", "rm", "-q", "--cached", "base.txt"], { cwd: join(dir, "r"), env: env() });
    const empty = await sh("write-tree");
    await sh("reset", "-q");
    const orphan = await commitTree(empty);
    const dropped = await commitChanges(git, await commitTree(empty, hardened, orphan));
    assert.deepEqual(dropped.paths, ["base.txt"]);
    // Keeping it is a merge that changes nothing the first parent had.
    const kept = await commitChanges(git, await commitTree(await sh("rev-parse", `${hardened}^{tree}`), hardened, orphan));
    assert.deepEqual(kept.paths, []);

    // A true merge of the change into a branch from before it still touches nothing.
    await sh("checkout", "-q", "-b", "late", before);
    await writeFile(join(dir, "r/other.txt"), "other\n");
    await sh("add", "other.txt");
    await sh("commit", "-q", "-m", "other");
    await sh("merge", "-q", "--no-edit", "--no-ff", hardened);
    assert.deepEqual((await commitChanges(git, await sh("rev-parse", "HEAD"))).paths, []);
    await sh("checkout", "-q", "main");
  });

  it("droppedPaths(): a rewind or a replaced history takes back the old side's changes; a fast-forward or a rebase onto newer work does not", async () => {
    await sh("checkout", "-q", "-b", "drop", "main");
    const base = await sh("rev-parse", "HEAD");
    await writeFile(join(dir, "r/guarded.txt"), "v2\n");
    await sh("add", "guarded.txt");
    await sh("commit", "-q", "-m", "guard");
    const guarded = await sh("rev-parse", "HEAD");
    assert.deepEqual(await droppedPaths(git, guarded, base), ["guarded.txt"], "a rewind");
    assert.deepEqual(await droppedPaths(git, base, guarded), [], "a fast-forward");

    // Work started from base, rebased onto guarded: it drops nothing guarded changed.
    await sh("checkout", "-q", "-b", "work", base);
    await writeFile(join(dir, "r/work.txt"), "work\n");
    await sh("add", "work.txt");
    await sh("commit", "-q", "-m", "work");
    const work = await sh("rev-parse", "HEAD");
    await sh("rebase", "-q", guarded);
    assert.deepEqual(await droppedPaths(git, work, await sh("rev-parse", "HEAD")), [], "a rebase onto newer work");
    assert.deepEqual(await droppedPaths(git, guarded, work), ["guarded.txt"], "a replaced history");

    // An unrelated history (no merge base): every path the old side has and the new one changes counts.
    const orphan = await sh("commit-tree", await sh("rev-parse", `${work}^{tree}`), "-m", "orphan");
    assert.deepEqual(await droppedPaths(git, guarded, orphan), ["guarded.txt"]);
    await sh("checkout", "-q", "main");
  });

  it("addedOver(): with no base, a commit's whole content; with several, only what it adds over each", async () => {
    const head = await sh("rev-parse", "HEAD");
    const whole = await addedOver(git, [], head);
    assert.deepEqual(whole.added.get("base.txt"), (await sh("show", `${head}:base.txt`)).split("\n"));
    assert.deepEqual((await addedOver(git, [head], head)).added.size, 0);
  });
});
