// The Grafana dashboard (deploy/grafana/pepr-macvlan.json) queries only series the module and the
// agent really export, with the right types, and has the panels operators asked for.
import test from "ava";
import * as fs from "node:fs";
import * as path from "node:path";
import { metricsCollector } from "pepr";
import "../../capabilities/metrics";
import { AgentMetrics } from "../../agent/metrics";

interface Panel {
  title: string;
  targets: { expr: string }[];
}
const dashboard = JSON.parse(
  fs.readFileSync(
    path.join(__dirname, "..", "..", "deploy", "grafana", "pepr-macvlan.json"),
    "utf8",
  ),
) as { uid: string; panels: Panel[]; templating: { list: { name: string }[] } };

/** name -> type, from the "# TYPE" lines of both endpoints. */
async function exported(): Promise<Map<string, string>> {
  const text =
    (await metricsCollector.getMetrics()) + (await new AgentMetrics().registry.metrics());
  const types = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(m[1], m[2]);
  return types;
}

test("every series a panel queries is exported, histograms through _bucket/_count", async t => {
  const types = await exported();
  const exprs = dashboard.panels.flatMap(p => p.targets.map(x => x.expr));
  t.true(exprs.length >= 15);
  for (const expr of exprs) {
    for (const [name] of expr.matchAll(/pepr_macvlan_[a-z_]+/g)) {
      const base = name.replace(/_(bucket|count|sum)$/, "");
      const type = types.get(name) ?? types.get(base);
      t.truthy(type, `${name} (in ${expr}) is not exported`);
      if (name !== base)
        t.is(type, "histogram", `${name}: only histograms have ${name.slice(base.length)}`);
      if (type === "counter")
        t.regex(expr, new RegExp(`(rate|increase)\\(${name}`), `${name} is a counter`);
    }
  }
});

test("the panels the issue lists, with a datasource variable", t => {
  const titles = dashboard.panels.map(p => p.title).join("\n");
  for (const want of [
    /Subnet usage/,
    /Admission latency p50 \/ p99/,
    /Denials/,
    /Repairs/,
    /Agents/,
  ])
    t.regex(titles, want);
  t.is(dashboard.uid, "pepr-macvlan");
  t.true(dashboard.templating.list.some(v => v.name === "datasource"));
  const ids = new Set(dashboard.panels.map(p => (p as unknown as { id: number }).id));
  t.is(ids.size, dashboard.panels.length);
});
