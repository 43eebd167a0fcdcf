// The queries of a Grafana dashboard (deploy/grafana/pepr-macvlan.json), as Prometheus runs them
// (pure): every panel's targets, rows' nested panels included, with the dashboard's variables and
// Grafana's built-in interval variables substituted.

export interface DashboardQuery {
  panel: string;
  refId: string;
  legend?: string;
  /** The expression as written in the dashboard. */
  expr: string;
}

interface Target {
  refId?: string;
  expr?: string;
  legendFormat?: string;
  hide?: boolean;
}
interface Panel {
  title?: string;
  targets?: Target[];
  panels?: Panel[];
}
interface Variable {
  name: string;
  type?: string;
  current?: { value?: string | string[] };
}
export interface Dashboard {
  panels?: Panel[];
  templating?: { list?: Variable[] };
}

/** Every target with an expression, in panel order (a collapsed row's panels after the row). */
export function dashboardQueries(d: Dashboard): DashboardQuery[] {
  const out: DashboardQuery[] = [];
  const walk = (panels: Panel[] = []) => {
    for (const p of panels) {
      for (const t of p.targets ?? []) {
        if (!t.expr || t.hide) continue;
        const q: DashboardQuery = { panel: p.title ?? "", refId: t.refId ?? "", expr: t.expr };
        if (t.legendFormat) q.legend = t.legendFormat;
        out.push(q);
      }
      walk(p.panels);
    }
  };
  walk(d.panels);
  return out;
}

/** Grafana's built-in variables, as Grafana would fill them for a 1 h view at 15 s resolution. */
export const GRAFANA_BUILTINS: Record<string, string> = {
  __rate_interval: "1m",
  __interval: "15s",
  __interval_ms: "15000",
  __range: "1h",
  __range_s: "3600",
  __range_ms: "3600000",
};

/**
 * The dashboard's variables: each one's current value (multi-value: a regex alternation, as
 * Grafana writes it for Prometheus), then `overrides` (a datasource, say), then the built-ins.
 */
export function dashboardVariables(
  d: Dashboard,
  overrides: Record<string, string> = {},
): Record<string, string> {
  const vars: Record<string, string> = { ...GRAFANA_BUILTINS };
  for (const v of d.templating?.list ?? []) {
    const value = v.current?.value;
    if (value === undefined) continue;
    vars[v.name] = Array.isArray(value) ? value.join("|") : value;
  }
  return { ...vars, ...overrides };
}

const VARIABLE = /\$\{([A-Za-z_]\w*)(?::\w+)?\}|\[\[([A-Za-z_]\w*)\]\]|\$([A-Za-z_]\w*)/g;

/** The expression with `$name`, `${name}`, `${name:format}` and `[[name]]` replaced; an unknown
 * variable is an error (the query would reach Prometheus with a `$` in it); `$1` (label_replace) is
 * not a variable. */
export function substitute(expr: string, vars: Record<string, string>): string {
  return expr.replace(VARIABLE, (whole, a?: string, b?: string, c?: string) => {
    const name = a ?? b ?? c ?? "";
    const value = vars[name];
    if (value === undefined) throw new Error(`${expr}: no value for the variable ${whole}`);
    return value;
  });
}

/** Variables an expression uses (without their `$`). */
export const variablesOf = (expr: string): string[] =>
  [...expr.matchAll(VARIABLE)].map(m => m[1] ?? m[2] ?? m[3]);
