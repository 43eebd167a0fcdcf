// `npm run bench:agent`: how long after a macvlan pod is Running can its own node reach it?
// 100 pods on the local cluster with the operator and the agent DaemonSet; for each pod, the time
// from the moment it is first seen Running to the first successful ping from its node.
import { runClusterBench } from "./harness";
import { execFile, execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { promisify } from "node:util";
import { testDeployment, waitFor, macvlanSubnet } from "../test/integration/helpers";

const PODS = Number(process.env.BENCH_PODS ?? 100);
const NS = "bench-agent";
const run = promisify(execFile);

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

async function pingFrom(node: string, ip: string): Promise<boolean> {
  try {
    await run("ip", ["netns", "exec", node, "ping", "-n", "-c", "1", "-W", "1", ip]);
    return true;
  } catch {
    return false;
  }
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

function agentRssMiB(): number[] {
  // The agent's image runs `node /app/agent.js` (hack/kubelet/images.ts).
  const out = execFileSync("pgrep", ["-f", "node /app/agent.js"], { encoding: "utf8" })
    .trim()
    .split("\n");
  return out
    .map(pid => /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1])
    .filter((kb): kb is string => !!kb)
    .map(kb => Number(kb) / 1024);
}

runClusterBench(
  2,
  async c => {
    await c.apply(
      macvlanSubnet("bench", {
        ranges: [{ start: "198.18.130.1", end: "198.18.130.250" }],
      }),
    );
    await c.createNamespace(NS, { "macvlan.dev/subnet": "bench" });
    await waitFor(
      async () =>
        (await c.listPods("pepr-system", "app.kubernetes.io/name=pepr-macvlan-agent")).length === 2,
      {
        what: "agents running",
      },
    );

    await c.apply(testDeployment({ namespace: NS, name: "probe", replicas: PODS }));
    const runningAt = new Map<string, number>();
    const latency = new Map<string, number>();
    const inFlight = new Set<string>();
    await waitFor(
      async () => {
        const pods = JSON.parse(await c.kubectl(["-n", NS, "get", "pods", "-o", "json"]))
          .items as Json[];
        const now = Date.now();
        for (const p of pods) {
          const uid = p.metadata.uid as string;
          if (p.status?.phase !== "Running" || latency.has(uid) || inFlight.has(uid)) continue;
          if (!runningAt.has(uid)) runningAt.set(uid, now);
          const ip = p.metadata.annotations["macvlan.dev/ip"];
          inFlight.add(uid);
          void pingFrom(p.spec.nodeName, ip).then(ok => {
            if (ok) latency.set(uid, Date.now() - runningAt.get(uid)!);
            inFlight.delete(uid);
          });
        }
        return latency.size === PODS;
      },
      { what: `${PODS} pods reachable from their nodes`, timeoutMs: 900_000, intervalMs: 100 },
    );
    const sorted = [...latency.values()].sort((x, y) => x - y);
    const rss = agentRssMiB();
    console.log(`\n## node agent benchmark (${PODS} pods, 2 nodes)\n`);
    console.log("| measure | value |\n| --- | --- |");
    console.log(`| pod Running → reachable from its node, p50 | ${percentile(sorted, 50)} ms |`);
    console.log(`| pod Running → reachable from its node, p99 | ${percentile(sorted, 99)} ms |`);
    console.log(`| max | ${sorted[sorted.length - 1]} ms |`);
    console.log(`| agent memory (RSS) | ${rss.map(m => `${m.toFixed(0)} MiB`).join(", ")} |`);
    console.log(
      "\n(Running is when the benchmark first sees the pod Running, polled every 100 ms; reachable is the first successful ping.)",
    );
  },
  { agent: true },
);
