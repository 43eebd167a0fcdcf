// A small argument parser (no dependency: the plugin must start fast). Flags: --name value,
// --name=value, -x value; boolean flags are listed. Everything else is positional.
export interface Parsed {
  positional: string[];
  flags: Record<string, string | true>;
}

const ALIASES: Record<string, string> = { o: "output", n: "namespace", h: "help", y: "yes" };
const BOOLEAN = new Set(["help", "force", "yes", "all-namespaces"]);

export function parseArgs(argv: readonly string[]): Parsed {
  const out: Parsed = { positional: [], flags: {} };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") {
      out.positional.push(...argv.slice(i + 1));
      break;
    }
    const m = /^--?([A-Za-z][\w-]*)(?:=(.*))?$/.exec(a);
    if (!m || a === "-") {
      out.positional.push(a);
      continue;
    }
    const name = a.startsWith("--") ? m[1] : (ALIASES[m[1]] ?? m[1]);
    if (m[2] !== undefined) out.flags[name] = m[2];
    else if (BOOLEAN.has(name)) out.flags[name] = true;
    else if (i + 1 < argv.length) out.flags[name] = argv[++i];
    else throw new UsageError(`${a} needs a value`);
  }
  return out;
}

export class UsageError extends Error {}

export function flag(p: Parsed, name: string): string | undefined {
  const v = p.flags[name];
  return typeof v === "string" ? v : undefined;
}
