// The firewall's answer to a reload signal, read from the bundle's log. The agent can make
// that log busy (each refused request is a line): under a flood of a few MB/s the answer
// reached the log up to 11 s after the signal, behind what was queued before it, the log
// went without a line for seconds at a time, and docker's `local` driver (10 MiB x 3)
// rotated it away within seconds, so that either way of reading it (following it, or
// reading it again from the signal on) missed the answer now and then. So both are used,
// and a firewall that logged anything since the signal (busy) is given BB_DOCKER_TIMEOUT
// to answer; only one that logged nothing in 5 s is taken for a bundle that never will (one
// from an older bot-bottle, whose init does not pass the signal on to the firewall).
import { setTimeout as sleep } from "node:timers/promises";
import { boundedDocker } from "../docker/cmd.ts";
import { BbError } from "../errors.ts";
import { ANY_EXIT, onOutputLines, start } from "../proc.ts";

// The firewall's own two reload lines, whole from the start (init's "firewall | " and the
// firewall's own prefix): its other lines quote what the agent sent, so a line that only
// contains these words may be the agent's.
const RELOADED = /^firewall \| firewall: policy reloaded from \//;
const REFUSED = /^firewall \| firewall: (?:error: )?policy reload refused, keeping the previous policy: /;
/** Any line of the firewall's, a cut one's later pieces included (init's "firewall +| "). */
const FIREWALL_LINE = /^firewall \+?\| /;
/** How often the log is read again from `since`, beside following it. */
const REREAD_MS = 2_000;

/** What the log held from a time stamp on: the firewall's reload lines and the count of all its lines. */
interface LogSince {
  reloads: string[];
  lines: number;
}

function tally(text: string): LogSince {
  const lines = text.split("\n").filter((l) => FIREWALL_LINE.test(l));
  return { reloads: lines.filter((l) => RELOADED.test(l) || REFUSED.test(l)), lines: lines.length };
}

/** The log of `container` from `since` on (all of it when null), read once. */
export async function logSince(container: string, since: string | null): Promise<LogSince> {
  const r = await boundedDocker(["logs", ...(since ? ["--since", since] : []), container], { expect: ANY_EXIT, what: `Cannot read the log of container ${container}` });
  return tally(`${r.stdout}\n${r.stderr}`);
}

interface AnswerOptions {
  /** How long a firewall that logs nothing gets to answer. */
  quietMs: number;
  /** How long one that is logging gets (it is working through what came before). */
  mostMs: number;
  /** Called once when `quietMs` has passed and the firewall is busy. */
  onBusy?: (lines: number) => void;
}

interface Answer {
  reloaded: boolean;
  /** The firewall's lines since the signal. */
  lines: number;
}

/** Which of `reloads` came after the signal decides: true (reloaded), an error (refused), or null. */
function verdict(reloads: string[]): true | BbError | null {
  const l = reloads.find((r) => RELOADED.test(r) || REFUSED.test(r));
  if (!l) return null;
  return RELOADED.test(l) ? true : new BbError("STATE", l.slice("firewall | firewall: ".length));
}

/**
 * Wait for the firewall's word on a signal just sent to `container`, whose log held
 * `before` from `since` on before the signal: reloaded, refused (a STATE error with its
 * words), or not reloaded once `quietMs` passed with no new line of the firewall's, or
 * `mostMs` in any case.
 */
export function firewallAnswer(container: string, since: string | null, before: LogSince, opts: AnswerOptions): Promise<Answer> {
  const child = start(["docker", "logs", "--follow", ...(since ? ["--since", since] : []), container], { stdio: ["ignore", "pipe", "pipe"] });
  const began = Date.now();
  // Following replays the log from `since`: what was there before the signal is skipped.
  const followed: LogSince = { reloads: [], lines: 0 };
  let reread: LogSince = before;
  const fresh = () => Math.max(followed.lines, reread.lines) - before.lines;
  let saidBusy = false;
  const stop = new AbortController();
  return new Promise<Answer>((resolve, reject) => {
    let settled = false;
    const end = (e: Error | null, answer?: Answer) => {
      if (settled) return;
      settled = true;
      clearInterval(clock);
      stop.abort();
      child.kill("SIGKILL");
      if (e) reject(e);
      else resolve(answer!);
    };
    const decide = () => {
      const v = verdict(followed.reloads.slice(before.reloads.length)) ?? verdict(reread.reloads.slice(before.reloads.length));
      if (v === true) end(null, { reloaded: true, lines: fresh() });
      else if (v) end(v);
    };
    onOutputLines(child, (parts) => {
      const t = tally(parts.join("\n"));
      followed.lines += t.lines;
      followed.reloads.push(...t.reloads);
      if (t.reloads.length) decide();
    });
    const clock = setInterval(() => {
      const waited = Date.now() - began;
      if (waited > opts.mostMs) return end(null, { reloaded: false, lines: fresh() });
      if (waited <= opts.quietMs) return;
      if (fresh() <= 0) return end(null, { reloaded: false, lines: 0 });
      if (!saidBusy) opts.onBusy?.(fresh());
      saidBusy = true;
    }, 100);
    child.on("error", (e) => end(new BbError("SUBPROCESS", `Cannot read the log of container ${container}: ${e.message}`, { cause: e })));
    // Read again from `since` now and then: following alone missed the answer at times.
    void (async () => {
      while (!settled) {
        // Ends with the wait, so a pending read never holds the process.
        if (!(await sleep(REREAD_MS, true, { signal: stop.signal }).catch(() => false))) return;
        try {
          reread = await logSince(container, since);
        } catch (e) {
          return end(e as Error);
        }
        decide();
      }
    })();
  });
}
