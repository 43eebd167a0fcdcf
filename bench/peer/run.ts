// One set-up of bench:peer: install (outside the window), then create the Deployments and measure
// until every pod holds an address and is Running, delete everything, wait the hold time and count
// what is still held; metrics and /proc are read around that window.
import { log } from "../harness";
import { Cluster, sleep } from "../../test/integration/helpers";
import { PeerOptions, nodeOfDeployment } from "./config";
import { METRIC_NAMES, Samples, delta, parseMetrics } from "./metrics";
import { ComponentUsage, ProcSampler } from "./procs";
import type { Setup } from "./setups";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

export interface SetupResult {
  name: string;
  pods: number;
  addressedSeconds?: number;
  runningSeconds?: number;
  addressed: number;
  running: number;
  warnings: Record<string, number>;
  /** One message per warning reason, for the results file. */
  messages: Record<string, string>;
  duplicates: number;
  deleteSeconds?: number;
  held: number;
  heldDetail?: string;
  metrics: Samples;
  usage: ComponentUsage[];
}

function deployment(o: PeerOptions, s: Setup, i: number): Json {
  const k = nodeOfDeployment(o, i);
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: `d${i}`, namespace: s.namespace },
    spec: {
      replicas: o.replicas,
      selector: { matchLabels: { app: `d${i}` } },
      template: {
        metadata: { labels: { app: `d${i}` }, annotations: s.podAnnotations(k) },
        spec: {
          terminationGracePeriodSeconds: 0,
          nodeSelector: { "kubernetes.io/hostname": `pmv-node-${k}` },
          containers: [
            {
              name: "main",
              image: "busybox:1.36",
              imagePullPolicy: "IfNotPresent",
              command: ["sleep", "infinity"],
            },
          ],
        },
      },
    },
  };
}

const net1Ips = (p: Json): string[] => {
  const a = p.metadata.annotations?.["k8s.v1.cni.cncf.io/network-status"];
  if (!a) return [];
  try {
    return (JSON.parse(a) as Json[]).find(s => s.interface === "net1")?.ips ?? [];
  } catch {
    return [];
  }
};

/** The API server's own /metrics, parsed (METRIC_NAMES). */
export async function metrics(c: Cluster): Promise<Samples> {
  const text = await c.kubectl(["get", "--raw", "/metrics"], { timeoutMs: 120_000 });
  return parseMetrics(text, METRIC_NAMES);
}

/** Polls the namespace's pods until all N hold a net1 address and run (or the timeout). */
async function watchPods(c: Cluster, o: PeerOptions, ns: string, started: number) {
  const r = { addressed: 0, running: 0, duplicates: 0, addressedAt: 0, runningAt: 0 };
  const deadline = started + o.timeoutSeconds * 1000;
  let told = 0;
  while (Date.now() < deadline && !(r.addressedAt && r.runningAt)) {
    const pods = ((await c.api.get(`/api/v1/namespaces/${ns}/pods`)).items as Json[]).filter(
      p => !p.metadata.deletionTimestamp,
    );
    const ips = pods.flatMap(net1Ips);
    r.duplicates = Math.max(r.duplicates, ips.length - new Set(ips).size);
    r.addressed = pods.filter(p => net1Ips(p).length).length;
    r.running = pods.filter(p => p.status?.phase === "Running").length;
    const now = Date.now();
    if (!r.addressedAt && r.addressed >= o.pods) r.addressedAt = now;
    if (!r.runningAt && r.running >= o.pods) r.runningAt = now;
    if (now - told > 15_000) {
      told = now;
      log(`${ns}: ${r.addressed}/${o.pods} addressed, ${r.running}/${o.pods} Running`);
    }
    await sleep(1000);
  }
  return r;
}

/** Warning events of the namespace by reason (an event's count includes its repeats). */
async function warnings(c: Cluster, ns: string) {
  const counts: Record<string, number> = {};
  const messages: Record<string, string> = {};
  for (const e of (await c.api.get(`/api/v1/namespaces/${ns}/events`)).items as Json[]) {
    if (e.type !== "Warning") continue;
    counts[e.reason] = (counts[e.reason] ?? 0) + (e.series?.count ?? e.count ?? 1);
    // The end of a CNI error says what failed; the start is the sandbox id.
    messages[e.reason] ??= String(e.message ?? "").slice(-400);
  }
  return { counts, messages };
}

async function deleteAll(
  c: Cluster,
  ns: string,
  timeoutSeconds: number,
): Promise<number | undefined> {
  const t0 = Date.now();
  await c.kubectl(["-n", ns, "delete", "deployment", "--all", "--wait=false"]);
  while (Date.now() - t0 < timeoutSeconds * 1000) {
    if (!(await c.api.get(`/api/v1/namespaces/${ns}/pods`)).items.length)
      return (Date.now() - t0) / 1000;
    await sleep(1000);
  }
  return undefined;
}

export async function runSetup(c: Cluster, o: PeerOptions, s: Setup): Promise<SetupResult> {
  log(`${s.name}: installing`);
  await c.createNamespace(s.namespace, s.namespaceLabels);
  const objects = await s.install(c);
  if (objects.length) await c.apply(objects);
  await sleep(5000); // let the install settle before the window opens
  const before = await metrics(c);
  const sampler = new ProcSampler();
  sampler.start();
  log(`${s.name}: creating ${o.deployments} Deployments x ${o.replicas} pods`);
  const t0 = Date.now();
  await c.apply(Array.from({ length: o.deployments }, (_, i) => deployment(o, s, i)));
  const w = await watchPods(c, o, s.namespace, t0);
  const sec = (t: number) => (t ? (t - t0) / 1000 : undefined);
  log(
    `${s.name}: addressed ${sec(w.addressedAt)?.toFixed(1) ?? "never"} s, Running ${sec(w.runningAt)?.toFixed(1) ?? "never"} s`,
  );
  const deleteSeconds = await deleteAll(c, s.namespace, o.timeoutSeconds);
  log(
    `${s.name}: pods deleted in ${deleteSeconds?.toFixed(1) ?? "(timed out)"} s; holding ${o.holdSeconds} s`,
  );
  await sleep(o.holdSeconds * 1000);
  const held = await s.held(c);
  const warned = await warnings(c, s.namespace);
  const after = await metrics(c);
  const usage = sampler.stop();
  await s.remove(c);
  await c.kubectl(["delete", "namespace", s.namespace, "--wait=true", "--timeout=300s"], {
    timeoutMs: 320_000,
  });
  return {
    name: s.name,
    pods: o.pods,
    addressedSeconds: sec(w.addressedAt),
    runningSeconds: sec(w.runningAt),
    addressed: w.addressed,
    running: w.running,
    warnings: warned.counts,
    messages: warned.messages,
    duplicates: w.duplicates,
    deleteSeconds,
    held: held.count,
    heldDetail: held.detail,
    metrics: delta(before, after),
    usage,
  };
}
