// What upstream did with a forwarded push, read from upstream's refs rather than from git's
// exit code. `git push --atomic` is all or nothing at upstream, but git's exit code is the
// push as the gate's git saw it: a connection lost (or a timeout) once upstream had moved
// its refs fails a push that landed. The gate's refs must end where upstream's are, and
// the agent be told which of its refs landed.
import { ZERO, type RefUpdate } from "./policy.ts";

/** The updates upstream holds as pushed: each ref at its new value, or gone for a delete. */
export function landedUpdates(updates: RefUpdate[], upstream: Map<string, string>): RefUpdate[] {
  return updates.filter((u) => (ZERO.test(u.new) ? !upstream.has(u.ref) : upstream.get(u.ref) === u.new));
}

/** "a, b" of the updates' ref names, for messages. */
export function refNames(updates: RefUpdate[]): string {
  return updates.map((u) => u.ref).join(", ");
}
