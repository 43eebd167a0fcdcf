// `npm run bench:cluster`: 1,000 pods (10 Deployments x 100) on the local cluster, once in a
// namespace without the product and once in an opted-in one, in the same run. Prints the time
// until every pod is networked (and, with the product, holds a Bound lease), the ratio,
// admission latency from the module's metrics and the controllers' memory.
import { log, runClusterBench } from "./harness";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { Cluster, testDeployment, waitFor, macvlanSubnet } from "../test/integration/helpers";
import { nodeSpec, paths } from "../hack/cluster/config";
import { readProcRecords } from "../hack/cluster/proc";

const DEPLOYMENTS = Number(process.env.BENCH_DEPLOYMENTS ?? 10);
const REPLICAS = Number(process.env.BENCH_REPLICAS ?? 100);
const NODES = Number(process.env.BENCH_NODES ?? 5);
const TOTAL = DEPLOYMENTS * REPLICAS;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

async function pods(c: Cluster, ns: string): Promise<Json[]> {
  return JSON.parse(
    await c.kubectl(["-n", ns, "get", "pods", "-o", "json"], { timeoutMs: 120_000 }),
  ).items;
}

/** Creates the Deployments and waits until `done` holds; returns seconds. */
async function run(
  c: Cluster,
  ns: string,
  done: (pods: Json[]) => Promise<boolean> | boolean,
): Promise<number> {
  const started = Date.now();
  await c.apply(
    Array.from({ length: DEPLOYMENTS }, (_, i) =>
      testDeployment({
        namespace: ns,
        name: `d${i}`,
        replicas: REPLICAS,
        terminationGracePeriodSeconds: 0,
      }),
    ),
  );
  let last = 0;
  await waitFor(
    async () => {
      const list = await pods(c, ns);
      const networked = list.filter(
        p => p.metadata.annotations?.["k8s.v1.cni.cncf.io/network-status"],
      ).length;
      if (networked - last >= 100) {
        last = networked;
        log(`${ns}: ${networked}/${TOTAL} pods networked`);
      }
      return list.length === TOTAL && networked === TOTAL && (await done(list));
    },
    { what: `${TOTAL} pods in ${ns}`, timeoutMs: 1_800_000, intervalMs: 1000 },
  );
  return (Date.now() - started) / 1000;
}

async function drain(c: Cluster, ns: string) {
  await c.kubectl(["delete", "namespace", ns, "--wait=false"]);
  await waitFor(async () => (await c.kubectlResult(["get", "namespace", ns])).code !== 0, {
    what: `namespace ${ns} gone`,
    timeoutMs: 1_800_000,
    intervalMs: 2000,
  });
}

function quantiles(metrics: string, name: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of metrics.matchAll(
    new RegExp(`^${name}\\{quantile="([0-9.]+)"\\} ([0-9.eE+-]+|NaN)$`, "gm"),
  )) {
    out[m[1]] = Number(m[2]);
  }
  return out;
}

function rssMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

runClusterBench(NODES, async c => {
  await c.apply(
    macvlanSubnet("bench", {
      ranges: [{ start: "198.18.120.1", end: "198.18.127.254" }],
      reuseDelaySeconds: 0,
    }),
  );

  await c.createNamespace("bench-plain");
  log(`baseline: ${TOTAL} pods without the product`);
  const plain = await run(c, "bench-plain", () => true);
  log(`baseline done in ${plain.toFixed(1)} s; draining`);
  await drain(c, "bench-plain");

  await c.createNamespace("bench-macvlan", { "macvlan.dev/subnet": "bench" });
  log(`product: ${TOTAL} pods with a macvlan lease each`);
  const product = await run(c, "bench-macvlan", async list => {
    if (
      !list.every(p =>
        p.metadata.annotations?.["k8s.v1.cni.cncf.io/network-status"]?.includes('"net1"'),
      )
    ) {
      return false;
    }
    const leases = JSON.parse(
      await c.kubectl(["get", "mvl", "-l", "macvlan.dev/subnet=bench", "-o", "json"], {
        timeoutMs: 120_000,
      }),
    ).items as Json[];
    return leases.length === TOTAL && leases.every(l => l.status?.phase === "Bound");
  });
  log(`product done in ${product.toFixed(1)} s`);

  const metrics = [1, 2].map(i => {
    const node = nodeSpec(i);
    return execFileSync(
      "ip",
      ["netns", "exec", node.name, "curl", "-sk", `https://${node.ip}:3000/metrics`],
      {
        encoding: "utf8",
      },
    );
  });
  const procs = readProcRecords(paths.procs).filter(p => p.name.startsWith("pepr-"));
  const rss = procs.map(p => `${p.name} ${rssMiB(p.pid).toFixed(0)} MiB`).join(", ");

  console.log(
    `\n## pepr-macvlan cluster benchmark (${NODES} nodes, ${DEPLOYMENTS} Deployments x ${REPLICAS} pods)\n`,
  );
  console.log("| measure | value |\n| --- | --- |");
  console.log(`| ${TOTAL} pods networked, no product | ${plain.toFixed(1)} s |`);
  console.log(`| ${TOTAL} pods networked with net1 and a Bound lease | ${product.toFixed(1)} s |`);
  console.log(`| ratio product / baseline | ${(product / plain).toFixed(2)} |`);
  metrics.forEach((m, i) => {
    const alloc = quantiles(m, "pepr_macvlan_allocation_latency_ms");
    console.log(
      `| replica ${i + 1}: lease allocation p50 / p99 | ${alloc["0.5"]?.toFixed(1)} / ${alloc["0.99"]?.toFixed(1)} ms |`,
    );
  });
  console.log(`| controller memory (RSS) | ${rss} |`);
  await drain(c, "bench-macvlan");
});
