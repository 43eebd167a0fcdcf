// Output of every command: a table (default and -o wide), or the command's data as JSON or YAML
// (-o json|yaml) for scripts. Pure: returns the text to print.

export type OutputFormat = "table" | "wide" | "json" | "yaml";

export interface Column<T> {
  header: string;
  value: (row: T) => string;
  /** Shown with -o wide only. */
  wide?: boolean;
}

export function renderTable<T>(rows: readonly T[], columns: Column<T>[], wide: boolean): string {
  const cols = columns.filter(c => wide || !c.wide);
  const cells = rows.map(r => cols.map(c => c.value(r)));
  const widths = cols.map((c, i) => Math.max(c.header.length, ...cells.map(r => r[i].length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => (i === values.length - 1 ? v : v.padEnd(widths[i])))
      .join("   ")
      .trimEnd();
  return [line(cols.map(c => c.header)), ...cells.map(line)].join("\n") + "\n";
}

/** `[#####.....]  50%`: used out of total, `width` characters. */
export function usageBar(used: bigint, total: bigint, width = 10): string {
  if (total <= 0n) return `[${".".repeat(width)}]   -`;
  const filled = Number((used * BigInt(width) + total - 1n) / total);
  const pct = Number((used * 100n) / total);
  const shown = used > 0n && pct === 0 ? "<1" : String(pct);
  return `[${"#".repeat(Math.min(width, filled))}${".".repeat(Math.max(0, width - filled))}] ${shown.padStart(3)}%`;
}

/** How long ago `iso` was, as kubectl prints ages (5s, 3m, 2h, 4d). */
export function age(iso: string | undefined, now: Date): string {
  const t = Date.parse(iso ?? "");
  if (!Number.isFinite(t)) return "-";
  const s = Math.max(0, Math.floor((now.getTime() - t) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** JSON for -o json: bigints as decimal strings, dates as ISO strings. */
export function toJson(data: unknown): string {
  return (
    JSON.stringify(data, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v), 2) + "\n"
  );
}

/** YAML for -o yaml; the yaml package is loaded only here (startup stays fast otherwise). */
export function toYaml(data: unknown): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const YAML = require("yaml") as typeof import("yaml");
  return YAML.stringify(JSON.parse(toJson(data)));
}
