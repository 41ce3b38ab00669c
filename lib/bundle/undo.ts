// A stack of undo steps: each create pushes its inverse, and a failure (or Ctrl-C) runs
// them newest-first, best-effort, so a tool leaves nothing half-made behind.
import { log } from "../log.ts";

export class Undo {
  private steps: { what: string; fn: () => Promise<unknown> }[] = [];

  /** Whether anything is left to undo. */
  get pending(): boolean {
    return this.steps.length > 0;
  }

  push(what: string, fn: () => Promise<unknown>): void {
    this.steps.push({ what, fn });
  }

  async run(): Promise<void> {
    while (this.steps.length) {
      const { what, fn } = this.steps.pop()!;
      try {
        log.debug(`rollback: ${what}`);
        await fn();
      } catch (e) {
        log.warn(`rollback: could not ${what}: ${(e as Error).message}`);
      }
    }
  }
}

/** Throw the signal's reason if it fired (checked between steps). */
export function checkAbort(signal?: AbortSignal): void {
  if (signal?.aborted) throw signal.reason;
}
