// The pure parts of the Prometheus scrape test (test/integration/prometheus.test.ts): the scrape
// configuration it (and an operator, docs/operations.md) gives Prometheus, and the dashboard's
// queries with their variables substituted.
import test from "ava";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import {
  ScrapeJob,
  podTargetGroups,
  renderScrapeConfig,
  scrapeConfig,
} from "../../hack/prometheus/scrape-config";
import {
  Dashboard,
  dashboardQueries,
  dashboardVariables,
  substitute,
  variablesOf,
} from "../../hack/prometheus/dashboard";

const DASHBOARD = JSON.parse(
  fs.readFileSync(
    path.join(__dirname, "..", "..", "deploy", "grafana", "pepr-macvlan.json"),
    "utf8",
  ),
) as Dashboard;

const job = (name: string, o = {}) =>
  scrapeConfig(o).scrape_configs.find(j => j.job_name === name) as ScrapeJob;
const relabels = (j: ScrapeJob) => j.relabel_configs;

test("two jobs: module pods over HTTPS on 3000, agents over HTTP on 9478, found in pepr-system", t => {
  const mod = job("pepr-macvlan");
  const agent = job("pepr-macvlan-agent");
  t.is(mod.scheme, "https");
  t.deepEqual(mod.tls_config, { insecure_skip_verify: true });
  t.is(agent.scheme, "http");
  for (const j of [mod, agent]) {
    t.deepEqual(j.kubernetes_sd_configs, [{ role: "pod", namespaces: { names: ["pepr-system"] } }]);
    t.is(relabels(j)[1].regex, "Running");
  }
  t.deepEqual(relabels(mod)[0], {
    source_labels: ["__meta_kubernetes_pod_label_pepr_dev_controller"],
    regex: "admission|watcher",
    action: "keep",
  });
  t.is(relabels(mod)[2].replacement, "$1:3000");
  t.deepEqual(relabels(agent)[0].source_labels, [
    "__meta_kubernetes_pod_label_app_kubernetes_io_name",
  ]);
  t.is(relabels(agent)[2].replacement, "$1:9478");
  t.true(relabels(agent).some(r => r.target_label === "node"));
});

test("options: namespace, interval, ports and a kubeconfig for a Prometheus outside the cluster", t => {
  const o = {
    namespace: "mv",
    intervalSeconds: 5,
    discovery: { kubernetes: { kubeconfig: "/k" } },
    modulePort: 1,
    agentPort: 2,
  };
  const c = scrapeConfig(o);
  t.is(c.global.scrape_interval, "5s");
  t.deepEqual(job("pepr-macvlan-agent", o).kubernetes_sd_configs, [
    { role: "pod", namespaces: { names: ["mv"] }, kubeconfig_file: "/k" },
  ]);
  t.is(relabels(job("pepr-macvlan", o))[2].replacement, "$1:1");
  t.is(relabels(job("pepr-macvlan-agent", o))[2].replacement, "$1:2");
});

test("file discovery: the same jobs and relabelling, pods from files with Kubernetes' labels", t => {
  const o = { discovery: { files: ["/t/pods.json"] } };
  for (const name of ["pepr-macvlan", "pepr-macvlan-agent"]) {
    const j = job(name, o);
    t.deepEqual(j.file_sd_configs, [{ files: ["/t/pods.json"], refresh_interval: "5s" }]);
    t.is(j.kubernetes_sd_configs, undefined);
    t.deepEqual(j.relabel_configs, job(name).relabel_configs);
  }
  const groups = podTargetGroups([
    {
      metadata: {
        name: "agent-x",
        namespace: "pepr-system",
        labels: { "app.kubernetes.io/name": "pepr-macvlan-agent", "pepr.dev/controller": "y" },
      },
      spec: { nodeName: "n1" },
      status: { phase: "Running", podIP: "198.18.0.11" },
    },
    { metadata: { name: "pending" }, status: { phase: "Pending" } },
  ]);
  t.deepEqual(groups, [
    {
      targets: ["198.18.0.11"],
      labels: {
        __meta_kubernetes_namespace: "pepr-system",
        __meta_kubernetes_pod_name: "agent-x",
        __meta_kubernetes_pod_ip: "198.18.0.11",
        __meta_kubernetes_pod_node_name: "n1",
        __meta_kubernetes_pod_phase: "Running",
        __meta_kubernetes_pod_label_app_kubernetes_io_name: "pepr-macvlan-agent",
        __meta_kubernetes_pod_label_pepr_dev_controller: "y",
      },
    },
  ]);
  // The labels the jobs keep by are the ones the groups carry.
  const keeps = ["pepr-macvlan", "pepr-macvlan-agent"].map(n => relabels(job(n))[0].source_labels);
  for (const [label] of keeps) t.true(String(label) in groups[0].labels);
});

test("the rendered file is YAML (JSON) that reads back as the configuration", t => {
  const text = renderScrapeConfig({ intervalSeconds: 5 });
  t.deepEqual(parse(text), scrapeConfig({ intervalSeconds: 5 }));
});

test("every query of the dashboard, with its panel; none uses a variable it does not define", t => {
  const qs = dashboardQueries(DASHBOARD);
  t.true(qs.length >= 15);
  t.true(qs.every(q => q.panel && q.refId && q.expr));
  const vars = dashboardVariables(DASHBOARD, { datasource: "prometheus" });
  for (const q of qs) t.notRegex(substitute(q.expr, vars), /\$|\[\[/, q.expr);
});

test("nested rows and hidden targets; variables in all of Grafana's spellings", t => {
  const d: Dashboard = {
    panels: [
      {
        title: "a",
        targets: [
          { refId: "A", expr: "up" },
          { refId: "B", expr: "x", hide: true },
        ],
      },
      { title: "row", panels: [{ title: "b", targets: [{ refId: "A", expr: 'y{s=~"$s"}' }] }] },
    ],
    templating: { list: [{ name: "s", current: { value: ["lan", "lan6"] } }, { name: "e" }] },
  };
  t.deepEqual(
    dashboardQueries(d).map(q => `${q.panel}/${q.refId}`),
    ["a/A", "b/A"],
  );
  const vars = dashboardVariables(d, { ds: "p" });
  t.is(vars.s, "lan|lan6");
  t.false("e" in vars);
  t.is(
    substitute('rate(x{s=~"$s",d="${ds}",f="${s:regex}",o="[[s]]"}[$__rate_interval])', vars),
    'rate(x{s=~"lan|lan6",d="p",f="lan|lan6",o="lan|lan6"}[1m])',
  );
  t.is(
    substitute('label_replace(up, "a", "$1", "b", "(.*)")', vars),
    'label_replace(up, "a", "$1", "b", "(.*)")',
  );
  t.throws(() => substitute("x[$nope]", vars), { message: /\$nope/ });
  t.deepEqual(variablesOf("a{$s}[${__range}] [[ds]]"), ["s", "__range", "ds"]);
});

test("docs/operations.md shows the scrape configuration the test uses", t => {
  const doc = fs.readFileSync(path.join(__dirname, "..", "..", "docs", "operations.md"), "utf8");
  const block = doc.split("### Scraping")[1]?.match(/```yaml\n([\s\S]*?)```/)?.[1];
  t.truthy(block, "a yaml block under ### Scraping");
  t.deepEqual(parse(block!), { scrape_configs: scrapeConfig().scrape_configs });
});
