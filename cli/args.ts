// A small argument parser (no dependency: the plugin must start fast). Flags: --name value,
// --name=value, -x value; boolean flags are listed. Everything else is positional.
// The options every command shares are declared once here (OPTIONS): their short forms, whether
// they take a value, how --help shows them, and how they are read and checked (readOptions).
import type { LeasePhase } from "../crds/types";
import type { OutputFormat } from "./format";

export interface Parsed {
  positional: string[];
  flags: Record<string, string | true>;
}

interface OptionSpec {
  short?: string;
  /** A flag without a value (--force); the others take one. */
  boolean?: boolean;
  /** How --help names it (its value's placeholder included). */
  label?: string;
}

/** The plugin's options. An option not listed takes a value, like --phase. */
export const OPTIONS = {
  output: { short: "o", label: "-o, --output table|wide|json|yaml" },
  namespace: { short: "n", label: "-n, --namespace" },
  subnet: { label: "--subnet S" },
  phase: { label: "--phase P" },
  help: { short: "h", boolean: true },
  force: { boolean: true },
  yes: { short: "y", boolean: true },
  "all-namespaces": { boolean: true },
  context: { label: "--context NAME" },
  kubeconfig: { label: "--kubeconfig PATH" },
} satisfies Record<string, OptionSpec>;

export type OptionName = keyof typeof OPTIONS;

const SPECS: Record<string, OptionSpec> = OPTIONS;
const ALIASES: Record<string, string> = Object.fromEntries(
  Object.entries(SPECS).flatMap(([name, o]) => (o.short ? [[o.short, name]] : [])),
);
const BOOLEAN = new Set(Object.keys(SPECS).filter(name => SPECS[name].boolean));

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

/** The shared options as the commands use them, read and checked in one place. */
export interface Options {
  output: OutputFormat;
  namespace?: string;
  subnet?: string;
  /** Not checked: a phase no lease has lists no lease. */
  phase?: LeasePhase;
  force: boolean;
  yes: boolean;
  context?: string;
  kubeconfig?: string;
}

const FORMATS: readonly OutputFormat[] = ["table", "wide", "json", "yaml"];

/** A bad -o value: the message says which values it takes. */
export class OutputError extends UsageError {
  constructor() {
    super("-o must be table, wide, json or yaml");
  }
}

export function readOptions(p: Parsed): Options {
  const output = (flag(p, "output") ?? "table") as OutputFormat;
  if (!FORMATS.includes(output)) throw new OutputError();
  return {
    output,
    namespace: flag(p, "namespace"),
    subnet: flag(p, "subnet"),
    phase: flag(p, "phase") as LeasePhase | undefined,
    force: !!p.flags.force,
    yes: !!p.flags.yes,
    context: flag(p, "context"),
    kubeconfig: flag(p, "kubeconfig"),
  };
}

/** --help lines for a command's options: the option's label, then what it does there. */
export function optionHelp(lines: [OptionName, string][]): string {
  return lines
    .map(([name, text]) => {
      const spec: OptionSpec = OPTIONS[name];
      const label = spec.label ?? `--${name}`;
      return `  ${label.padEnd(Math.max(18, label.length + 3))}${text}`;
    })
    .join("\n");
}

/** The first positional argument, which the command cannot do without. */
export function required(p: Parsed, what: string): string {
  const v = p.positional[0];
  if (!v) throw new UsageError(`needs ${what}`);
  return v;
}
