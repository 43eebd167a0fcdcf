// Where a pod admission's time goes, with and without this replica's pool of pre-leased addresses.
// The API server is simulated: lease writes (the in-memory fake port of the unit tests, which fails
// like the API server) and the NAD apply (a local HTTP stand-in) each take `latency` ms, as on a
// busy API server. Prints admission p50/p99 and the API requests made on the request path.
// Pods arrive at a steady rate (open loop, as a ReplicaSet burst reaches the webhook).
//   npx tsx bench/admission.bench.ts [pods=600] [podsPerSecond=100] [latencyMs=50]
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PeprMutateRequest } from "pepr";
import { AdmissionRequest } from "pepr/dist/lib/common-types";
import { FakePort } from "../test/unit/helpers/fake-port";
import { MacvlanLease } from "../crds/types";

const pods = Number(process.argv[2] ?? 600);
const rate = Number(process.argv[3] ?? 100);
const latencyMs = Number(process.argv[4] ?? 50);
const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));

/** The fake port, each request taking `latencyMs`; counts requests made while admitting. */
class SlowPort extends FakePort {
  requests = 0;
  /** Creates made by admission itself (a pool lease carries its owner annotation). */
  onPath = 0;
  async createLease(lease: MacvlanLease) {
    this.requests++;
    if (!lease.metadata?.annotations?.["macvlan.dev/pool-owner"]) this.onPath++;
    await sleep(latencyMs);
    return super.createLease(lease);
  }
}

async function standInApi(): Promise<void> {
  const api = createServer((req, res) => {
    req.resume();
    req.on("end", () => setTimeout(() => res.end("{}"), latencyMs));
  });
  await new Promise<void>(r => api.listen(0, "127.0.0.1", r));
  api.unref();
  const file = join(mkdtempSync(join(tmpdir(), "pmv-admission-")), "kubeconfig");
  const server = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
  writeFileSync(
    file,
    `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "${server}", insecure-skip-tls-verify: true}}]\n` +
      `users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n`,
  );
  process.env.KUBECONFIG = file;
}

const request = (name: string, namespace: string) =>
  new PeprMutateRequest({
    uid: name,
    kind: { group: "", version: "v1", kind: "Pod" },
    resource: { group: "", version: "v1", resource: "pods" },
    operation: "CREATE",
    namespace,
    name,
    object: { metadata: { name, namespace }, spec: { containers: [] } },
    userInfo: {},
  } as unknown as AdmissionRequest);

async function run(withPool: boolean) {
  // One run per process (bench main spawns them): the replica's caches are module singletons.
  const admit = await import("../capabilities/pods/admit");
  const { poolSettings } = await import("../capabilities/pods/pool");
  const port = new SlowPort();
  const { state, pool, assignAddress } = admit;
  state.start = async () => undefined;
  state.subnets.upsert({
    metadata: { name: "lan", uid: "lan-uid", generation: 1 },
    spec: { master: "eth0", cidr: "198.18.0.0/16", gateway: "198.18.0.1" },
  });
  for (let n = 0; n < 10; n++)
    state.namespaces.upsert({
      metadata: { name: `team-${n}`, labels: { "macvlan.dev/subnet": "lan" } },
    });
  poolSettings.max = withPool ? 64 : 0;
  poolSettings.recordDelayMs = 60_000;
  await pool.start({ identity: { namespace: "pepr-system", pod: "bench", boot: "1" }, port });
  // Warm-up: one pod per namespace (its NAD), and the pool's first fill.
  for (let n = 0; n < 10; n++) await assignAddress(request(`warm-${n}`, `team-${n}`), port);
  await sleep(latencyMs * 4);
  port.requests = 0;
  port.onPath = 0;
  const times: number[] = [];
  const ips = new Set<string>();
  const admitOne = async (i: number) => {
    const req = request(`web-${i}`, `team-${i % 10}`);
    const t0 = performance.now();
    await assignAddress(req, port);
    times.push(performance.now() - t0);
    ips.add(req.Raw.metadata?.annotations?.["macvlan.dev/ip"] ?? `error-${i}`);
  };
  const t0 = performance.now();
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < pods; i++) {
    const due = t0 + (i * 1000) / rate;
    if (due > performance.now()) await sleep(due - performance.now());
    inFlight.push(admitOne(i));
  }
  await Promise.all(inFlight);
  const wall = performance.now() - t0;
  times.sort((a, b) => a - b);
  const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
  return {
    p50: q(0.5),
    p99: q(0.99),
    wall,
    creates: port.requests,
    onPath: port.onPath,
    distinct: ips.size,
  };
}

async function main() {
  const mode = process.env.PMV_BENCH_MODE;
  if (mode) {
    await standInApi();
    console.log(`RESULT ${JSON.stringify(await run(mode === "pool"))}`);
    process.exit(0);
  }
  console.log(`${pods} pods arriving at ${rate}/s, every API request ${latencyMs} ms\n`);
  console.log(
    "| admission | p50 ms | p99 ms | burst wall s | creates on the request path | creates in all | distinct IPs |",
  );
  console.log("| --- | --- | --- | --- | --- | --- | --- |");
  for (const withPool of [false, true]) {
    const out = execFileSync(
      process.execPath,
      [...process.execArgv, process.argv[1], ...process.argv.slice(2)],
      {
        env: { ...process.env, PMV_BENCH_MODE: withPool ? "pool" : "create", LOG_LEVEL: "warn" },
        encoding: "utf8",
        maxBuffer: 64 << 20,
      },
    );
    const r = JSON.parse(
      out
        .split("\n")
        .find(l => l.startsWith("RESULT "))!
        .slice(7),
    );
    console.log(
      `| ${withPool ? "pool (pre-leased)" : "create per pod"} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ` +
        `${(r.wall / 1000).toFixed(2)} | ${r.onPath} | ${r.creates} | ${r.distinct}/${pods} |`,
    );
  }
  process.exit(0);
}

void main();
