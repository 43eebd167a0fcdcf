// A real Prometheus (Debian's package: hack/prometheus.sh) scrapes the local cluster with the
// scrape configuration operators get (hack/prometheus/scrape-config.ts: pods found through the
// Kubernetes API, Pepr's /metrics over HTTPS on :3000, the agents' on :9478), and every query of
// the Grafana dashboard (deploy/grafana/pepr-macvlan.json), its variables substituted, returns
// data through Prometheus' HTTP API. What the panels show is provoked: pods leased, bound,
// released and their addresses reused; refusals (a missing subnet, an address outside the pool);
// repairs (Reserved leases nobody claims, reclaimed by the resync).
import anyTest, { TestFn } from "ava";
import * as fs from "node:fs";
import * as path from "node:path";
import { renderScrapeConfig } from "../../hack/prometheus/scrape-config";
import {
  Dashboard,
  DashboardQuery,
  dashboardQueries,
  dashboardVariables,
  substitute,
} from "../../hack/prometheus/dashboard";
import {
  Cluster,
  getJson,
  macvlanSubnet,
  sleep,
  testPod,
  unclaimedLease,
  waitFor,
  withCluster,
} from "./helpers";
import { Prometheus, Sample, installPrometheus, podTargetsFile } from "./helpers/prometheus";

const test = anyTest as TestFn;
const SCRAPE_SECONDS = 5;
const NS = "prom-a";
const MISSING = "prom-missing";
/** Three addresses: the second wave's two pods reuse at least one of the first wave's. */
const RANGE = { start: "198.18.100.10", end: "198.18.100.12" };
const DASHBOARD = JSON.parse(
  fs.readFileSync(
    path.join(__dirname, "..", "..", "deploy", "grafana", "pepr-macvlan.json"),
    "utf8",
  ),
) as Dashboard;

let binary = "";
let prom: Prometheus | undefined;
let stopTargets = () => {};
test.serial.before(() => {
  binary = installPrometheus();
});
// Before withCluster: Prometheus stops before the cluster goes down.
test.serial.after.always(async () => {
  stopTargets();
  await prom?.stop();
});
const cluster = withCluster(test, {
  nodes: 2,
  module: {
    env: {
      MACVLAN_RESYNC_SECONDS: "5",
      MACVLAN_RESERVED_TTL_SECONDS: "8",
      // No pre-leased pools: the three addresses go to pods, so the second wave must reuse.
      MACVLAN_POOL_MAX: "0",
    },
  },
});

const leasesOf = async (c: Cluster, ns: string) =>
  ((await getJson(c, ["mvl", "-l", `macvlan.dev/pod-namespace=${ns}`]))?.items ?? []) as {
    status?: { phase?: string };
  }[];

/** Two pods leased and bound; two refusals; an unclaimed lease the resync will reclaim. */
async function wave(c: Cluster, n: number, release: boolean): Promise<void> {
  await c.apply(unclaimedLease("lan", `198.18.100.${200 + n}`, `02:00:00:00:02:0${n}`));
  const names = [`w${n}-a`, `w${n}-b`];
  await c.apply(
    names.map(name => testPod({ name, namespace: NS, terminationGracePeriodSeconds: 0 })),
  );
  for (const [ns, annotations, why] of [
    [MISSING, {}, /does not exist/],
    [NS, { "macvlan.dev/ip": "198.18.100.50" }, /./],
  ] as const) {
    const pod = testPod({ name: `w${n}-refused`, namespace: ns, annotations });
    const r = await c.kubectlResult(["create", "-f", "-"], { input: JSON.stringify(pod) });
    if (r.code === 0 || !why.test(r.stderr)) throw new Error(`not refused: ${r.stdout}${r.stderr}`);
  }
  for (const name of names) await c.waitForPodReady(NS, name, { timeoutMs: 120_000 });
  await waitFor(
    async () => (await leasesOf(c, NS)).filter(l => l.status?.phase === "Bound").length === 2,
    { what: `wave ${n}: both leases Bound`, timeoutMs: 60_000 },
  );
  if (!release) return;
  await c.kubectl(["-n", NS, "delete", "pod", ...names, "--wait=true"]);
  // Released, then deleted after the reuse delay: the addresses are free for the next wave.
  await waitFor(async () => (await leasesOf(c, NS)).length === 0, {
    what: `wave ${n}: released leases gone after the reuse delay`,
    timeoutMs: 90_000,
  });
}

/** Series that truly are 0 here: no CAS conflict, duplicate lease, unready subnet or failed step. */
const MAY_BE_ZERO =
  /cas_conflicts_total|subnet_conflicts|1 - pepr_macvlan_agent_subnet_ready|step_errors_total/;

const show = (s: Sample[]) =>
  s.map(x => `${JSON.stringify(x.metric)} ${x.value.toPrecision(4)}`).join("; ") || "(empty)";

/** Whether a query's answer is data: a finite value at least, and one above 0 where provoked. */
function judge(q: DashboardQuery, samples: Sample[]): boolean {
  const finite = samples.filter(s => Number.isFinite(s.value));
  return finite.length > 0 && (MAY_BE_ZERO.test(q.expr) || finite.some(s => s.value > 0));
}

test.serial("Prometheus finds and scrapes the admission, watcher and agent pods", async t => {
  const c = cluster();
  // Debian's build has no Kubernetes discovery: the pods come from a file with the labels it gives.
  prom = await Prometheus.start(binary, dir => {
    const file = path.join(dir, "pods.json");
    stopTargets = podTargetsFile(() => c.listPods("pepr-system"), file);
    return renderScrapeConfig({ intervalSeconds: SCRAPE_SECONDS, discovery: { files: [file] } });
  });
  const p = prom;
  const up = await waitFor(
    async () => {
      const ts = await p.targets();
      const ok = (job: string) => ts.filter(x => x.job === job && x.health === "up").length;
      return ok("pepr-macvlan") === 3 && ok("pepr-macvlan-agent") === c.nodes.length && ts;
    },
    { what: "3 module and 2 agent targets up", timeoutMs: 120_000 },
  ).catch(async e => {
    t.log(JSON.stringify(await p.targets(), null, 1), p.output());
    throw e;
  });
  t.log(up.map(x => `${x.job} ${x.scrapeUrl} ${x.health}`).join("\n"));
  const build = await p.query("pepr_macvlan_build_info");
  t.is(build.length, 3, show(build));
});

test.serial("every dashboard query returns data after pods, refusals and repairs", async t => {
  const c = cluster();
  const p = prom!;
  await c.apply(macvlanSubnet("lan", { ranges: [RANGE], reuseDelaySeconds: 2 }));
  await c.createNamespace(NS, { "macvlan.dev/subnet": "lan" });
  await c.createNamespace(MISSING, { "macvlan.dev/subnet": "nosuch" });
  await waitFor(
    async () => (await getJson(c, ["mvs", "lan"]))?.status?.conditions?.[0]?.status === "True",
    { what: "subnet lan Ready" },
  );
  // The zero-valued series are stored before anything happens: rate() sees the first event.
  await sleep(2 * SCRAPE_SECONDS * 1000);
  await wave(c, 1, true);
  await wave(c, 2, false);
  const vars = dashboardVariables(DASHBOARD, { datasource: "prometheus" });
  const queries = dashboardQueries(DASHBOARD).map(q => ({ ...q, run: substitute(q.expr, vars) }));
  const answers = new Map<string, Sample[]>();
  await waitFor(
    async () => {
      for (const q of queries) answers.set(q.run, await p.query(q.run));
      return queries.every(q => judge(q, answers.get(q.run)!));
    },
    { what: "every dashboard query answered", timeoutMs: 180_000, intervalMs: 5_000 },
  ).catch(() => undefined);
  for (const q of queries) {
    const s = answers.get(q.run) ?? [];
    t.log(`${q.panel} [${q.refId}] ${q.run}\n    => ${show(s)}`);
    t.true(judge(q, s), `${q.panel} [${q.refId}] ${q.run}: ${show(s)}`);
  }
  t.true(queries.length >= 15);
});
