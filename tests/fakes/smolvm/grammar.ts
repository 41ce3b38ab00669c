// The stand-in's command-line grammar, per smolvm release, and a strict clap-like parser:
// anything a release does not accept (a flag it lacks, a positional name where it wants
// --name, a missing required argument) fails with clap's wording and exit code 2, so a
// driver speaking the wrong dialect fails here as it would against the real binary.
// Only the subcommands and flags bot-bottle uses exist; everything else is "unexpected".

interface Flag {
  long: string;
  short?: string;
  /** Takes a value (VALUE placeholder for messages); boolean when absent. */
  value?: string;
  multi?: boolean;
  required?: boolean;
}

interface Command {
  path: string;
  flags: Flag[];
  /** Required positional arguments, in order (placeholders like "NAME"). */
  positionals: string[];
  /** Everything after the options (or after `--`) is the guest command. */
  trailing?: string;
}

export interface Parsed {
  flags: Record<string, string[] | boolean>;
  positionals: string[];
  trailing: string[];
}

export class UsageError extends Error {
  constructor(
    message: string,
    readonly usage: string,
  ) {
    super(message);
  }
}

export function versionAtLeast(version: string, min: string): boolean {
  const a = version.split(".").map(Number);
  const b = min.split(".").map(Number);
  for (let i = 0; i < 3; i++) if (a[i]! !== b[i]!) return a[i]! > b[i]!;
  return true;
}

const ENV: Flag = { long: "env", short: "e", value: "KEY=VALUE", multi: true };

/** The commands a given release accepts. */
export function grammar(version: string): Command[] {
  const flagNames = versionAtLeast(version, "1.0.2");
  const name: Flag = { long: "name", value: "NAME", required: true };
  return [
    {
      path: "machine create",
      flags: [
        { long: "from", value: "PATH" }, { long: "net" }, { long: "allow-cidr", value: "CIDR", multi: true },
        { long: "cpus", value: "N" }, { long: "mem", value: "MiB" }, ENV, ...(flagNames ? [name] : []),
      ],
      positionals: flagNames ? [] : ["NAME"],
    },
    { path: "machine start", flags: [name], positionals: [] },
    { path: "machine stop", flags: [name], positionals: [] },
    { path: "machine status", flags: [name], positionals: [] },
    { path: "machine delete", flags: [{ long: "force", short: "f" }, ...(flagNames ? [name] : [])], positionals: flagNames ? [] : ["NAME"] },
    {
      path: "machine exec",
      flags: [name, ENV, { long: "workdir", short: "w", value: "DIR" }, { long: "interactive", short: "i" }, { long: "tty", short: "t" }],
      positionals: [],
      trailing: "COMMAND",
    },
    { path: "machine cp", flags: [], positionals: ["SRC", "DST"] },
    { path: "machine ls", flags: [{ long: "json" }], positionals: [] },
    { path: "pack create", flags: [{ long: "image", value: "IMAGE", required: true }, { long: "output", short: "o", value: "PATH", required: true }], positionals: [] },
  ];
}

function usageOf(cmd: Command): string {
  const pos = cmd.positionals.map((p) => ` <${p}>`).join("");
  const trail = cmd.trailing ? ` -- <${cmd.trailing}>...` : "";
  return `Usage: smolvm ${cmd.path} [OPTIONS]${pos}${trail}`;
}

export function parse(cmd: Command, args: string[]): Parsed {
  const usage = usageOf(cmd);
  const out: Parsed = { flags: {}, positionals: [], trailing: [] };
  const unexpected = (a: string) => new UsageError(`unexpected argument '${a}' found`, usage);
  const set = (f: Flag, v: string | true) => {
    if (v === true) {
      out.flags[f.long] = true;
      return;
    }
    const prev = out.flags[f.long];
    if (Array.isArray(prev) && !f.multi) throw new UsageError(`the argument '--${f.long} <${f.value}>' cannot be used multiple times`, usage);
    out.flags[f.long] = [...(Array.isArray(prev) ? prev : []), v];
  };
  let i = 0;
  while (i < args.length) {
    const a = args[i]!;
    if (a === "--") {
      if (!cmd.trailing) throw unexpected(a);
      out.trailing = args.slice(i + 1);
      break;
    }
    if (a.startsWith("--")) {
      const [key, inline] = a.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
      const f = cmd.flags.find((x) => x.long === key);
      if (!f) throw unexpected(a);
      if (f.value) {
        const v = inline ?? args[++i];
        if (v === undefined) throw new UsageError(`a value is required for '--${f.long} <${f.value}>' but none was supplied`, usage);
        set(f, v);
      } else {
        if (inline !== undefined) throw unexpected(a);
        set(f, true);
      }
      i++;
      continue;
    }
    if (a.startsWith("-") && a.length > 1) {
      // Clustered short flags (-it); a value-taking one consumes the rest or the next arg.
      for (let j = 1; j < a.length; j++) {
        const f = cmd.flags.find((x) => x.short === a[j]);
        if (!f) throw unexpected(j === 1 ? a : `-${a[j]}`);
        if (f.value) {
          const v = j + 1 < a.length ? a.slice(j + 1) : args[++i];
          if (v === undefined) throw new UsageError(`a value is required for '-${f.short} <${f.value}>' but none was supplied`, usage);
          set(f, v);
          break;
        }
        set(f, true);
      }
      i++;
      continue;
    }
    if (out.positionals.length < cmd.positionals.length) {
      out.positionals.push(a);
      i++;
      continue;
    }
    if (cmd.trailing) {
      out.trailing = args.slice(i);
      break;
    }
    throw unexpected(a);
  }
  const missing = [
    ...cmd.flags.filter((f) => f.required && out.flags[f.long] === undefined).map((f) => `--${f.long} <${f.value}>`),
    ...cmd.positionals.slice(out.positionals.length).map((p) => `<${p}>`),
    ...(cmd.trailing && out.trailing.length === 0 ? [`<${cmd.trailing}>...`] : []),
  ];
  if (missing.length) throw new UsageError(`the following required arguments were not provided:\n${missing.map((m) => `  ${m}`).join("\n")}`, usage);
  return out;
}

export function values(p: Parsed, key: string): string[] {
  const v = p.flags[key];
  return Array.isArray(v) ? v : [];
}

export function value(p: Parsed, key: string): string | undefined {
  return values(p, key)[0];
}

export function has(p: Parsed, key: string): boolean {
  return p.flags[key] === true;
}
