// Sends fuzz cases (./cases.ts) through the real API server and the installed module: every case
// as a server-side dry run, a sample as real creates (deleted afterwards). Classifies each
// answer and checks the module's promises: accepted or denied with a message naming the field,
// never a 500, a webhook failure or a timeout; the admission pods never restart; no real create
// leaves a lease without a pod or a NAD of a subnet that does not exist.
import { Kube, KubeError } from "../../hack/cluster/kube";
import { FuzzCase, NS_IN, NS_OUT, BASE_CIDR, BASE_SUBNET, PodCase, SubnetCase } from "./cases";

export type Outcome =
  | "accepted"
  | "denied by the module (field named)"
  | "denied by the API server's schema (field named)"
  | "denied by the API server (field named)"
  | "FAIL denied, no field named"
  | "FAIL webhook failed / 500"
  | "FAIL timeout";

export interface CaseResult {
  kind: FuzzCase["kind"];
  outcome: Outcome;
  ms: number;
  message?: string;
}

const WEBHOOK = /admission webhook "[^"]*pepr[^"]*" denied the request/;
const WEBHOOK_FAILED =
  /failed calling webhook|Internal error occurred|context deadline exceeded|failed to call webhook/i;

/** Where in a subnet or pod a denial may point: a field path, an annotation key, a named object. */
const SUBNET_FIELD = /\b(spec|metadata)(\.[A-Za-z]+|\[)|\bMacvlanSubnet\b.*\b(spec\.|name)/;
const POD_FIELD =
  /macvlan\.dev\/[a-z-]+|k8s\.v1\.cni\.cncf\.io\/networks|v1\.multus-cni\.io\/default-network|MacvlanSubnet "|namespace "|metadata\.|spec\./;
const FIELD_OF_SCHEMA =
  /(spec|metadata|junk)[.[]|: Invalid value|: Required value|Unsupported value|Too many|Too long/;

export function classify(c: FuzzCase, e: unknown, ms: number): CaseResult {
  if (e === undefined) return { kind: c.kind, outcome: "accepted", ms };
  const err = e as KubeError;
  const message = err.message ?? String(e);
  const base = { kind: c.kind, ms, message: message.slice(0, 600) };
  if (!(e instanceof KubeError) || err.status === 0 || /timeout after/.test(message))
    return { ...base, outcome: "FAIL timeout" };
  if (err.status >= 500 || WEBHOOK_FAILED.test(message))
    return { ...base, outcome: "FAIL webhook failed / 500" };
  if (WEBHOOK.test(message)) {
    const named = (c.kind === "subnet" ? SUBNET_FIELD : POD_FIELD).test(message);
    return {
      ...base,
      outcome: named ? "denied by the module (field named)" : "FAIL denied, no field named",
    };
  }
  if (err.status === 422 && FIELD_OF_SCHEMA.test(message))
    return { ...base, outcome: "denied by the API server's schema (field named)" };
  if (err.status >= 400 && /metadata\.|spec\.|name|json|body|annotations/i.test(message))
    return { ...base, outcome: "denied by the API server (field named)" };
  return { ...base, outcome: "FAIL denied, no field named" };
}

const pathOf = (c: FuzzCase) =>
  c.kind === "subnet"
    ? "/apis/macvlan.dev/v1alpha1/macvlansubnets"
    : `/api/v1/namespaces/${(c as PodCase).namespace}/pods`;

/** One case; dry run unless `real`. */
export async function send(api: Kube, c: FuzzCase, real: boolean): Promise<CaseResult> {
  const started = Date.now();
  try {
    await api.request("POST", pathOf(c), {
      body: c.object,
      query: real ? {} : { dryRun: "All" },
      timeoutMs: 20_000,
    });
    return classify(c, undefined, Date.now() - started);
  } catch (e) {
    return classify(c, e, Date.now() - started);
  }
}

/** Runs `cases` with `concurrency` requests in flight; `onResult` sees each as it ends. */
export async function sendAll(
  api: Kube,
  cases: FuzzCase[],
  opts: { concurrency: number; real?: (i: number) => boolean },
  onResult: (r: CaseResult, c: FuzzCase, real: boolean) => void,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < cases.length; i = next++) {
      const real = opts.real?.(i) ?? false;
      onResult(await send(api, cases[i], real), cases[i], real);
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
}

/** The namespaces and base subnet the pod cases use. */
export async function prepare(api: Kube): Promise<void> {
  const apply = (path: string, obj: object) =>
    api.request("PATCH", path, {
      body: obj,
      contentType: "application/apply-patch+yaml",
      query: { fieldManager: "fuzz", force: true },
    });
  await apply(`/apis/macvlan.dev/v1alpha1/macvlansubnets/${BASE_SUBNET}`, {
    apiVersion: "macvlan.dev/v1alpha1",
    kind: "MacvlanSubnet",
    metadata: { name: BASE_SUBNET },
    spec: { master: "eth0", cidr: BASE_CIDR, gateway: "198.19.200.1", reuseDelaySeconds: 0 },
  });
  for (const [name, labels] of [
    [NS_IN, { "macvlan.dev/subnet": BASE_SUBNET }],
    [NS_OUT, {}],
  ] as const) {
    await apply(`/api/v1/namespaces/${name}`, {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name, labels },
    });
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = any;

/** Restart counts of the module's pods (admission and watcher), by pod name. */
export async function moduleRestarts(api: Kube): Promise<Record<string, number>> {
  const pods = (await api.get("/api/v1/namespaces/pepr-system/pods")).items as Obj[];
  return Object.fromEntries(
    pods.map(p => [
      p.metadata.name,
      (p.status?.containerStatuses ?? []).reduce(
        (n: number, s: Obj) => n + (s.restartCount ?? 0),
        0,
      ),
    ]),
  );
}

/** Deletes what real creates made: pods at once (no kubelet runs them), subnets normally. */
export async function cleanUp(api: Kube, created: FuzzCase[]): Promise<void> {
  for (const c of created) {
    const name = (c.object.metadata as { name: string }).name;
    const path =
      c.kind === "pod"
        ? `/api/v1/namespaces/${(c as PodCase).namespace}/pods/${encodeURIComponent(name)}`
        : `/apis/macvlan.dev/v1alpha1/macvlansubnets/${encodeURIComponent(name)}`;
    await api
      .request("DELETE", path, { query: c.kind === "pod" ? { gracePeriodSeconds: 0 } : {} })
      .catch(() => undefined);
  }
}

export interface Leftovers {
  /** Leases (not Released, not a replica's pool lease) whose pod does not exist. */
  leasesWithoutPod: string[];
  /** Managed NADs whose subnet does not exist. */
  nadsWithoutSubnet: string[];
  /** Subnets created for real that are still there after deletion (finalizer stuck). */
  subnetsLeft: string[];
}

export async function leftovers(api: Kube, subnets: SubnetCase[]): Promise<Leftovers> {
  const leases = (await api.get("/apis/macvlan.dev/v1alpha1/macvlanleases")).items as Obj[];
  const pods = (await api.get("/api/v1/pods")).items as Obj[];
  const uids = new Set(pods.map(p => p.metadata.uid));
  const names = new Set(pods.map(p => `${p.metadata.namespace}/${p.metadata.name}`));
  const leasesWithoutPod = leases
    .filter(
      l => l.status?.phase !== "Released" && !l.metadata.annotations?.["macvlan.dev/pool-owner"],
    )
    .filter(l => {
      const ref = l.spec?.podRef ?? {};
      return ref.uid ? !uids.has(ref.uid) : !names.has(`${ref.namespace}/${ref.name}`);
    })
    .map(l => l.metadata.name);
  const existing = new Set(
    ((await api.get("/apis/macvlan.dev/v1alpha1/macvlansubnets")).items as Obj[]).map(
      s => s.metadata.name,
    ),
  );
  const nads = (
    await api.get("/apis/k8s.cni.cncf.io/v1/network-attachment-definitions", {
      labelSelector: "app.kubernetes.io/managed-by=pepr-macvlan",
    })
  ).items as Obj[];
  const nadsWithoutSubnet = nads
    .filter(n => !existing.has(n.metadata.labels?.["macvlan.dev/subnet"]))
    .map(n => `${n.metadata.namespace}/${n.metadata.name}`);
  const subnetsLeft = subnets
    .map(s => (s.object.metadata as { name: string }).name)
    .filter(n => existing.has(n));
  return { leasesWithoutPod, nadsWithoutSubnet, subnetsLeft };
}

/** Counts by kind and outcome, as a Markdown table. */
export function table(results: CaseResult[]): string {
  const outcomes = [...new Set(results.map(r => r.outcome))].sort();
  const count = (kind: string, o: string) =>
    results.filter(r => (kind === "all" || r.kind === kind) && r.outcome === o).length;
  const rows = outcomes.map(
    o => `| ${o} | ${count("subnet", o)} | ${count("pod", o)} | ${count("all", o)} |`,
  );
  const ms = results.map(r => r.ms).sort((a, b) => a - b);
  const pct = (p: number) => ms[Math.min(ms.length - 1, Math.floor((p / 100) * ms.length))] ?? 0;
  return [
    "| outcome | subnets | pods | all |",
    "| --- | ---: | ---: | ---: |",
    ...rows,
    `| **total** | ${results.filter(r => r.kind === "subnet").length} | ${results.filter(r => r.kind === "pod").length} | ${results.length} |`,
    "",
    `answer time: p50 ${pct(50)} ms, p99 ${pct(99)} ms, max ${ms.at(-1) ?? 0} ms`,
  ].join("\n");
}

export const isFailure = (r: CaseResult) => r.outcome.startsWith("FAIL");

export interface FuzzOptions {
  cases: number;
  seed: number;
  /** Every n-th case is also created for real (then deleted). */
  realEvery: number;
  /** Valid-looking subnets (198.18.0.0/15 only) created for real, then deleted. */
  realSubnets: number;
  concurrency: number;
  log: (line: string) => void;
}

export interface FuzzReport {
  results: CaseResult[];
  real: number;
  failures: CaseResult[];
  restartsBefore: Record<string, number>;
  restartsAfter: Record<string, number>;
  leftovers: Leftovers;
  seconds: number;
}

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));

/** The whole run: prepare, send, create a sample for real, clean up, check what is left. */
export async function runFuzz(api: Kube, o: FuzzOptions): Promise<FuzzReport> {
  const t0 = Date.now();
  await prepare(api);
  const restartsBefore = await moduleRestarts(api);
  const { generate, generateSafeSubnets } = await import("./cases");
  const cases: FuzzCase[] = [
    ...generate(o.cases, o.seed),
    ...generateSafeSubnets(o.realSubnets, o.seed),
  ];
  o.log(
    `fuzz: ${cases.length} cases (seed ${o.seed}), every ${o.realEvery}th and the ${o.realSubnets} safe subnets for real`,
  );
  const results: CaseResult[] = [];
  const created: FuzzCase[] = [];
  const safeFrom = cases.length - o.realSubnets;
  // Real creates: the safe subnets (198.18.0.0/15 only) and a sample of the pods (their addresses
  // come from the base subnet's leases; they are bound to a node that does not exist).
  const isReal = (i: number) => i >= safeFrom || (i % o.realEvery === 0 && cases[i].kind === "pod");
  await sendAll(api, cases, { concurrency: o.concurrency, real: isReal }, (r, c, real) => {
    results.push(r);
    if (real && r.outcome === "accepted") created.push(c);
    if (results.length % 1000 === 0) o.log(`fuzz: ${results.length}/${cases.length} sent`);
  });
  const real = cases.filter((_, i) => isReal(i)).length;
  await cleanUp(api, created);
  // Leases of denied or deleted pods go by the reserved TTL and the resync; subnets by their
  // finalizer once their leases are gone. Poll until clean or a minute has passed.
  const realSubnets = created.filter((c): c is SubnetCase => c.kind === "subnet");
  let left = await leftovers(api, realSubnets);
  for (let i = 0; i < 30 && !clean(left); i++) {
    await sleep(2000);
    left = await leftovers(api, realSubnets);
  }
  return {
    results,
    real,
    failures: results.filter(isFailure),
    restartsBefore,
    restartsAfter: await moduleRestarts(api),
    leftovers: left,
    seconds: (Date.now() - t0) / 1000,
  };
}

const clean = (l: Leftovers) =>
  !l.leasesWithoutPod.length && !l.nadsWithoutSubnet.length && !l.subnetsLeft.length;

/** What the run printed: the counts, failures (first few), restarts and leftovers. */
export function summary(r: FuzzReport): string {
  const restarts = Object.entries(r.restartsAfter).map(
    ([pod, n]) => `${pod}: ${n - (r.restartsBefore[pod] ?? 0)}`,
  );
  return [
    table(r.results),
    `real creates: ${r.real} tried; run took ${r.seconds.toFixed(0)} s`,
    `module pod restarts during the run: ${restarts.join(", ") || "none listed"}`,
    `leftovers: ${r.leftovers.leasesWithoutPod.length} leases without a pod, ` +
      `${r.leftovers.nadsWithoutSubnet.length} NADs without a subnet, ` +
      `${r.leftovers.subnetsLeft.length} deleted subnets still there`,
    ...r.failures.slice(0, 10).map(f => `FAILURE ${f.kind} ${f.outcome}: ${f.message}`),
  ].join("\n");
}
