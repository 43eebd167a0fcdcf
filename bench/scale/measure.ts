// The measurements of one bench:scale phase: pod creates (client-side latency), time until every
// bench lease is Bound, the module's RSS per pod, one resync's duration and API requests, and an
// admission replica's restart to Ready.
import { log } from "../harness";
import { Cluster, sleep } from "../../test/integration/helpers";
import { NAMESPACE, WATCHER } from "../../hack/module/deploy";
import { Samples, delta, writeRequests } from "../peer/metrics";
import { metrics } from "../peer/run";
import { moduleProcesses } from "../peer/procs";
import { benchPod, inBatches, namespaceOf } from "./objects";

export interface CreateResult {
  seconds: number;
  failures: number;
  firstError?: string;
  latenciesMs: number[];
}

/** Creates pods [from, to) directly (no controller), `concurrency` in flight. */
export async function createPods(
  c: Cluster,
  from: number,
  to: number,
  subnets: number,
  concurrency: number,
): Promise<CreateResult> {
  const r: CreateResult = { seconds: 0, failures: 0, latenciesMs: [] };
  const t0 = Date.now();
  let told = t0;
  const idx = Array.from({ length: to - from }, (_, i) => from + i);
  await inBatches(idx, concurrency, async i => {
    const ns = namespaceOf(i % subnets);
    const s = Date.now();
    try {
      await c.api.create(`/api/v1/namespaces/${ns}/pods`, benchPod(ns, `p-${i}`));
      r.latenciesMs.push(Date.now() - s);
    } catch (e) {
      r.failures++;
      r.firstError ??= (e as Error).message.slice(0, 300);
    }
    if (Date.now() - told > 15_000) {
      told = Date.now();
      log(`created ${r.latenciesMs.length + r.failures}/${idx.length} (${r.failures} failed)`);
    }
  });
  r.seconds = (Date.now() - t0) / 1000;
  return r;
}

export function quantile(xs: number[], p: number): number | undefined {
  if (!xs.length) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)];
}

interface LeaseItem {
  spec?: { podRef?: { namespace?: string } };
  status?: { phase?: string };
}

/** Polls the leases until `want` bench leases are Bound; seconds since t0 (undefined: timed out). */
export async function waitBound(
  c: Cluster,
  want: number,
  t0: number,
  timeoutSeconds: number,
): Promise<{ seconds?: number; bound: number; leases: number }> {
  let told = 0;
  let last = { bound: 0, leases: 0 };
  while (Date.now() - t0 < timeoutSeconds * 1000) {
    const items = (await c.api.get("/apis/macvlan.dev/v1alpha1/macvlanleases"))
      .items as LeaseItem[];
    const bound = items.filter(
      l => l.status?.phase === "Bound" && l.spec?.podRef?.namespace?.startsWith("scale-ns-"),
    ).length;
    last = { bound, leases: items.length };
    if (bound >= want) return { seconds: (Date.now() - t0) / 1000, ...last };
    if (Date.now() - told > 15_000) {
      told = Date.now();
      log(`${bound}/${want} bench leases Bound (${items.length} leases in all)`);
    }
    await sleep(want > 2000 ? 5000 : 2000); // a list of 10,000s of leases is not free
  }
  return last;
}

export interface ModuleRss {
  watcherMiB: number;
  /** Per admission pod (by name). */
  admissionMiB: Record<string, number>;
}

/** RSS of the module's pods now, summed over each pod's node processes. */
export async function moduleRss(c: Cluster): Promise<ModuleRss> {
  const pods = (await c.api.get(`/api/v1/namespaces/${NAMESPACE}/pods`)).items as {
    metadata: { name: string; uid: string };
  }[];
  const nameOf = new Map(pods.map(p => [p.metadata.uid, p.metadata.name]));
  const r: ModuleRss = { watcherMiB: 0, admissionMiB: {} };
  for (const p of moduleProcesses()) {
    const mib = p.rssKiB / 1024;
    if (p.role === "watcher") r.watcherMiB += mib;
    else {
      const name = nameOf.get(p.podUid) ?? p.podUid;
      r.admissionMiB[name] = (r.admissionMiB[name] ?? 0) + mib;
    }
  }
  return r;
}

export interface ResyncResult {
  ms?: number;
  leases?: number;
  pods?: number;
  repairs?: number;
  requests: number;
  byResource: [string, number][];
}

const RESYNC_LINE = /pepr-macvlan resync: (\d+) leases, (\d+) pods, (\d+) repairs .*?, (\d+) ms/;
/** Not the resync's: kwok's node heartbeats, the bench's own log reads, non-resource URLs. */
const NOT_RESYNC = (r: string) =>
  / (nodes|leases\.coordination\.k8s\.io)(\/|$)/.test(r) || r.endsWith("/log") || / $/.test(r);
const READ_AND_WRITE = ["GET", "LIST", "POST", "PUT", "PATCH", "DELETE", "APPLY"];

/** Waits for the next resync that starts after now; its duration (watcher log) and API requests. */
export async function measureResync(c: Cluster, periodSeconds: number): Promise<ResyncResult> {
  const since = new Date();
  const before: Samples = await metrics(c);
  const deadline = Date.now() + (periodSeconds * 3 + 120) * 1000;
  while (Date.now() < deadline) {
    await sleep(3000);
    const out = await c.kubectl(
      [
        "-n",
        NAMESPACE,
        "logs",
        `deployment/${WATCHER}`,
        "--timestamps",
        `--since-time=${since.toISOString()}`,
      ],
      { timeoutMs: 60_000 },
    );
    for (const line of out.split("\n")) {
      const m = RESYNC_LINE.exec(line);
      if (!m) continue;
      const at = Date.parse(line.slice(0, line.indexOf(" ")));
      if (at - Number(m[4]) < since.getTime()) continue; // it started before the window
      const d = delta(before, await metrics(c));
      const w = writeRequests(d, READ_AND_WRITE, NOT_RESYNC);
      const byResource = [...w.byResource.entries()].sort((a, b) => b[1] - a[1]);
      return {
        ms: Number(m[4]),
        leases: +m[1],
        pods: +m[2],
        repairs: +m[3],
        requests: w.total,
        byResource,
      };
    }
  }
  return { requests: 0, byResource: [] };
}
