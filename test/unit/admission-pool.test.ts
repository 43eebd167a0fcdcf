// Admission from a replica's pool (capabilities/pods/pool.ts): a warm pool answers with no API
// request, the lease exists before the answer, two replicas never share an address, a revoked
// lease is never handed out, and a hand-out nobody binds is recorded as an ordinary reservation.
import test from "ava";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeTransport } from "../../capabilities/k8s/transport";
import { PeprMutateRequest } from "pepr";
import { AdmissionRequest } from "pepr/dist/lib/common-types";
import { assignAddress, pool, state } from "../../capabilities/pods/admit";
import { ClusterState } from "../../capabilities/cluster-state";
import { ReplicaPool, poolSettings } from "../../capabilities/pods/pool";
import {
  ANN_POOL_ORPHANED_AT,
  ANN_POOL_OWNER,
  ANN_POOL_RETURN_REQUESTED,
  ReplicaId,
  commitmentOf,
  isPoolLease,
  renderPoolLease,
} from "../../lib/decide/pool";
import { FakePort } from "./helpers/fake-port";
import { MacvlanLease } from "../../crds/types";
import { subnet } from "./helpers/objects";

poolSettings.recordDelayMs = 20;

// The NAD apply admission makes for a namespace's first pod goes to this stand-in API server.
const api = createServer((req, res) => {
  req.resume();
  req.on("end", () => res.setHeader("content-type", "application/json").end("{}"));
});
test.before(async () => {
  await new Promise<void>(r => api.listen(0, "127.0.0.1", r));
  const file = join(mkdtempSync(join(tmpdir(), "pmv-pool-")), "kubeconfig");
  const server = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
  writeFileSync(
    file,
    `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "${server}", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`,
  );
  process.env.KUBECONFIG = file;
});
test.after.always(async () => {
  await closeTransport();
  api.closeAllConnections();
  api.close();
});

const settle = async (ms = 30) => {
  for (let i = 0; i < ms / 5; i++) await new Promise(r => setTimeout(r, 5));
};

function fresh(port: FakePort, id: ReplicaId): { state: ClusterState; pool: ReplicaPool } {
  const s = new ClusterState();
  s.start = async () => undefined;
  s.namespaces.upsert({ metadata: { name: "team-a", labels: { "macvlan.dev/subnet": "lan" } } });
  s.subnets.upsert(subnet("lan"));
  // The shared "API server": every replica's cache sees every lease write.
  const p = new ReplicaPool(s);
  void p.start({ identity: id, port });
  return { state: s, pool: p };
}

/** Replica `id` with its pool for "lan" filled: its cache, its pool and the subnet. */
async function warmPool(port: FakePort, id: ReplicaId) {
  const r = fresh(port, id);
  await settle();
  const sub = r.state.subnets.get("lan")!;
  r.pool.topUp(sub);
  await settle();
  return { ...r, sub };
}

const A: ReplicaId = { namespace: "pepr-system", pod: "pepr-a", boot: "a1" };
const B: ReplicaId = { namespace: "pepr-system", pod: "pepr-b", boot: "b1" };

function request(name: string) {
  return new PeprMutateRequest({
    uid: name,
    kind: { group: "", version: "v1", kind: "Pod" },
    resource: { group: "", version: "v1", resource: "pods" },
    operation: "CREATE",
    namespace: "team-a",
    name,
    object: { metadata: { name, namespace: "team-a" }, spec: { containers: [] } },
    userInfo: {},
  } as unknown as AdmissionRequest);
}

test.serial("a warm pool admits with no API request, on a lease that already exists", async t => {
  poolSettings.recordDelayMs = 60_000; // the later record is not part of the request
  const port = new FakePort();
  state.start = async () => undefined;
  state.namespaces.upsert({
    metadata: { name: "team-a", labels: { "macvlan.dev/subnet": "lan" } },
  });
  state.subnets.upsert(subnet("lan"));
  t.true(await pool.start({ identity: A, port }));
  pool.topUp(state.subnets.get("lan")!);
  await settle();
  const before = port.writes.length;
  t.true(before >= poolSettings.min, "pre-leased in the background");
  const req = request("web-1");
  await assignAddress(req as never, port);
  const ann = req.Raw.metadata!.annotations!;
  t.false("macvlan.dev/admission-error" in ann);
  const name = `lan-${ann["macvlan.dev/ip"].replaceAll(".", "-")}`;
  const during = port.writes.slice(before);
  t.true(
    during.every(w => w.startsWith("create ") && !w.endsWith(name)),
    `only background top-up creates meanwhile: ${during.join(", ")}`,
  );
  t.true(port.writes.slice(0, before).includes(`create ${name}`), "leased before the request");
  const lease = port.leases.get(name);
  t.truthy(lease, "the lease exists before the pod");
  t.is(
    lease!.metadata!.annotations!["macvlan.dev/reservation-sha256"],
    commitmentOf(ann["macvlan.dev/reservation"]),
    "the pod's token opens the lease's commitment",
  );
});

/** A FakePort whose lease writes every cache in `caches` sees at once, as the watch delivers them. */
function linkedPort(): FakePort & { caches: ClusterState[] } {
  const port = Object.assign(new FakePort(), { caches: [] as ClusterState[] });
  const echo = (l: MacvlanLease) => {
    for (const c of port.caches) c.leases.upsert(structuredClone(l));
    return l;
  };
  const create = port.createLease.bind(port);
  const patch = port.patchLease.bind(port);
  const status = port.setLeaseStatus.bind(port);
  const remove = port.deleteLease.bind(port);
  port.createLease = async l => echo(await create(l));
  port.patchLease = async (...args) => echo(await patch(...args));
  port.setLeaseStatus = async (...args) => echo(await status(...args));
  port.deleteLease = async lock => {
    const before = port.leases.get(lock.name);
    await remove(lock);
    if (before && !port.leases.has(lock.name))
      for (const c of port.caches) c.leases.forget(structuredClone(before));
  };
  return port;
}

test.serial("two replicas admitting a burst never hand out one address twice", async t => {
  const port = linkedPort();
  const replicas = [fresh(port, A), fresh(port, B)];
  port.caches.push(...replicas.map(r => r.state));
  const ips: string[] = [];
  for (let round = 0; round < 60; round++) {
    for (const r of replicas) {
      const got = r.pool.take(r.state.subnets.get("lan")!, "team-a");
      if (got) ips.push(got.spec!.ip);
    }
    await settle(5);
  }
  t.true(ips.length > 60, `${ips.length} hand-outs from the pools`);
  t.is(new Set(ips).size, ips.length, "no duplicates");
  for (const ip of ips) t.truthy(port.leases.get(`lan-${ip.replaceAll(".", "-")}`));
});

test.serial("a revoked or vanished pool lease is never handed out", async t => {
  const port = new FakePort();
  const { state: s, pool: p, sub } = await warmPool(port, A);
  const ours = s.leases.list().filter(isPoolLease);
  t.true(ours.length > 0);
  for (const l of ours) {
    const revoked = structuredClone(l);
    revoked.metadata!.annotations![ANN_POOL_ORPHANED_AT] = new Date().toISOString();
    revoked.metadata!.resourceVersion = String(Number(l.metadata!.resourceVersion) + 1);
    s.leases.upsert(revoked);
  }
  const got = p.take(sub, "team-a");
  t.is(got, undefined, "every ready lease was revoked: admission creates its own");
});

test.serial(
  "a hand-out the watcher does not bind is recorded: Reserved now, for the pod's namespace",
  async t => {
    poolSettings.recordDelayMs = 20;
    const port = new FakePort();
    const { pool: p, sub } = await warmPool(port, A);
    const got = p.take(sub, "team-a", "web-9")!;
    const name = got.metadata!.name!;
    await settle(60);
    const recorded = port.leases.get(name)!;
    t.deepEqual(recorded.spec?.podRef, { namespace: "team-a", name: "web-9" });
    t.is(
      recorded.metadata?.annotations?.["macvlan.dev/reservation"],
      got.metadata!.annotations!["macvlan.dev/reservation"],
    );
    t.is(recorded.metadata?.annotations?.[ANN_POOL_OWNER], undefined);
    t.is(recorded.metadata?.labels?.["macvlan.dev/pod-namespace"], "team-a");
    t.is(recorded.status?.phase, "Reserved");
    t.true(Date.now() - Date.parse(recorded.status!.reservedAt!) < 5000, "the TTL counts from now");
  },
);

// A fixed IP that sits unused in an admission replica's pool is no one's yet: the pod that asks
// for it gets it, whichever replica admits it (in CI, a fixed-IP pod was refused because a pool
// lease made from a random start held its address).

/** The module's replica (A, serving assignAddress) and another replica B, on one linked port. */
async function twoReplicas() {
  const port = linkedPort();
  port.caches.push(state);
  t0(await pool.start({ identity: A, port }));
  // Start from nothing: earlier tests left A's pool and cache holding another port's leases.
  await pool.drain("lan");
  for (const l of state.leases.list()) state.leases.forget(l);
  const b = fresh(port, B);
  port.caches.push(b.state);
  await settle();
  return { port, b };
}
const t0 = (ok: boolean) => {
  if (!ok) throw new Error("the module's pool did not start");
};

const poolLeaseOf = (s: ClusterState, owner: ReplicaId) =>
  s.leases
    .list()
    .find(
      l =>
        isPoolLease(l) &&
        l.metadata?.annotations?.[ANN_POOL_OWNER] ===
          `${owner.namespace}/${owner.pod}/${owner.boot}`,
    );

function fixedRequest(name: string, ip: string) {
  const req = request(name);
  req.Raw.metadata!.annotations = { "macvlan.dev/ip": ip };
  return req;
}

test.serial("a fixed IP held ready in this replica's own pool is given to the pod", async t => {
  const { port } = await twoReplicas();
  pool.topUp(state.subnets.get("lan")!);
  await settle();
  const held = poolLeaseOf(state, A);
  t.truthy(held, "A pre-leased addresses");
  const req = fixedRequest("fixed-own", held!.spec!.ip);
  await assignAddress(req as never, port);
  const ann = req.Raw.metadata!.annotations!;
  t.false("macvlan.dev/admission-error" in ann, ann["macvlan.dev/admission-error"]);
  t.is(ann["macvlan.dev/ip"], held!.spec!.ip);
  const lease = port.leases.get(held!.metadata!.name!)!;
  t.true(lease.spec?.fixed, "a fixed lease of the pod, not the pool lease");
  t.is(lease.spec?.podRef?.name, "fixed-own");
  t.is(lease.metadata?.annotations?.[ANN_POOL_OWNER], undefined);
  t.false(
    pool.take(state.subnets.get("lan")!, "team-a")?.spec?.ip === held!.spec!.ip,
    "no longer in the pool",
  );
});

test.serial("a fixed IP held ready in another replica's pool is asked back and given", async t => {
  const { port, b } = await twoReplicas();
  b.pool.topUp(b.state.subnets.get("lan")!);
  await settle();
  const held = poolLeaseOf(b.state, B)!;
  t.truthy(held, "B pre-leased addresses");
  const req = fixedRequest("fixed-other", held.spec!.ip);
  await assignAddress(req as never, port);
  const ann = req.Raw.metadata!.annotations!;
  t.false("macvlan.dev/admission-error" in ann, ann["macvlan.dev/admission-error"]);
  t.is(ann["macvlan.dev/ip"], held.spec!.ip);
  const name = held.metadata!.name!;
  t.true(
    port.writes.some(w => w.startsWith(`patch ${name}@`)),
    "A asked B for it",
  );
  t.true(
    port.writes.some(w => w.startsWith(`delete ${name}@`)),
    "B returned it",
  );
  t.is(port.leases.get(name)?.spec?.podRef?.name, "fixed-other");
  const handed = new Set<string>();
  for (let i = 0; i < 80; i++) {
    const got = b.pool.take(b.state.subnets.get("lan")!, "team-a");
    if (got) handed.add(got.spec!.ip);
  }
  t.false(handed.has(held.spec!.ip), "B never hands the returned address out");
});

test.serial(
  "a fixed IP another replica has already handed out stays with that pod: refused as taken",
  async t => {
    const { port, b } = await twoReplicas();
    const sub = b.state.subnets.get("lan")!;
    b.pool.topUp(sub);
    await settle();
    const handed = b.pool.take(sub, "team-a", "web-first")!;
    t.truthy(handed);
    poolSettings.returnWaitMs = 150;
    const req = fixedRequest("fixed-late", handed.spec!.ip);
    await assignAddress(req as never, port);
    const error = req.Raw.metadata!.annotations!["macvlan.dev/admission-error"];
    t.regex(
      error ?? "",
      new RegExp(
        `fixed IP ${handed.spec!.ip.replaceAll(".", "\\.")} .*already taken by pod team-a/web-first`,
      ),
    );
    const lease = port.leases.get(handed.metadata!.name!)!;
    t.truthy(lease, "B did not delete a lease it handed out");
    t.is(
      lease.metadata?.annotations?.["macvlan.dev/reservation-sha256"],
      handed.metadata?.annotations?.["macvlan.dev/reservation-sha256"],
    );
    t.true(
      port.writes.some(w => w.startsWith(`patch ${handed.metadata!.name}@`)),
      "A asked B for it",
    );
    t.is(
      lease.metadata?.annotations?.[ANN_POOL_RETURN_REQUESTED],
      undefined,
      "the request did not follow the lease to its pod",
    );
  },
);

test.serial(
  "a fixed IP in the pool of a replica that does not answer is refused: who holds it, retry",
  async t => {
    const { port } = await twoReplicas();
    poolSettings.returnWaitMs = 100;
    const silent: ReplicaId = { namespace: "pepr-system", pod: "pepr-c", boot: "c1" };
    const held = port.put(renderPoolLease("lan", "198.18.100.9", "02:00:00:00:00:09", silent, "t"));
    state.leases.upsert(held);
    const req = fixedRequest("fixed-silent", "198.18.100.9");
    await assignAddress(req as never, port);
    t.regex(
      req.Raw.metadata!.annotations!["macvlan.dev/admission-error"] ?? "",
      /198\.18\.100\.9 .*held by admission replica pepr-system\/pepr-c\/c1 .*retry in a few seconds/,
    );
    t.truthy(
      port.leases.get(held.metadata!.name!),
      "nothing deleted what the replica may have handed out",
    );
  },
);

test.serial(
  "a pool lease whose create timed out but happened joins the pool: handed out or returned, never left behind",
  async t => {
    // Seen in a 300-pod burst: 50 pre-lease creates timed out on the client, the API server made
    // them all the same, and 58 pool leases stayed after every pod was gone.
    const port = linkedPort();
    const create = port.createLease.bind(port);
    port.createLease = async l => {
      await create(l); // the API server creates it, the watch delivers it …
      throw { status: 504, data: { message: "the answer never came" } }; // … the client times out
    };
    const { state: s, pool: p } = fresh(port, A);
    port.caches.push(s);
    await settle();
    const sub = s.subnets.get("lan")!;
    p.topUp(sub);
    await settle();
    const made = [...port.leases.keys()];
    t.true(made.length >= poolSettings.min, `${made.length} pool leases were made`);
    const got = p.take(sub, "team-a", "web-1");
    t.truthy(got, "an adopted lease is handed out");
    t.true(made.includes(got!.metadata!.name!));
    // Idle: the pool returns everything it holds, adopted leases included.
    const idle = poolSettings.idleMs;
    poolSettings.idleMs = -1;
    try {
      p.topUp(sub);
      await settle();
    } finally {
      poolSettings.idleMs = idle;
    }
    t.deepEqual(
      [...port.leases.keys()],
      [got!.metadata!.name!],
      "only the handed-out lease is left",
    );
  },
);

test.serial(
  "a ready lease a relist briefly lost rejoins the pool when the cache shows it again",
  async t => {
    const port = new FakePort();
    const { state: s, pool: p, sub } = await warmPool(port, A);
    const ready = s.leases.list().filter(isPoolLease);
    t.true(ready.length > 0);
    // A relist from a stale watch cache: every pool lease "deleted", then back.
    for (const l of ready) s.leases.forget(structuredClone(l));
    for (const l of ready) s.leases.upsert(structuredClone(l));
    const handed = new Set<string>();
    for (let i = 0; i < ready.length; i++) {
      const got = p.take(sub, "team-a");
      if (got) handed.add(got.metadata!.name!);
    }
    t.true(
      ready.every(l => handed.has(l.metadata!.name!)),
      "every lease the relist lost was handed out again, none left outside the pool",
    );
  },
);
