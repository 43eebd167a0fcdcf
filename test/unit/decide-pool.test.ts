// Replica pools of pre-leased addresses (lib/decide/pool.ts): who may claim a pool lease, when the
// resync keeps, revokes or reclaims one, and how a hand-out is recorded.
import test from "ava";
import {
  ANN_POOL_COMMITMENT,
  ANN_POOL_ORPHANED_AT,
  ANN_POOL_OWNER,
  ANN_POOL_RETURN_REQUESTED,
  ReplicaId,
  isReturnable,
  planPoolLease,
  poolTarget,
  recordWrites,
  renderPoolLease,
  returnRequestWrite,
  staleIncarnationWrites,
} from "../../lib/decide/pool";
import { readFileSync } from "node:fs";
import { UNADMITTED_NAMESPACES, leaseOfPod } from "../../lib/decide/pods";
import { planResync, ResyncSnapshot } from "../../lib/decide/repair";
import { MacvlanLease } from "../../crds/types";
import { NOW, pod, subnet } from "./helpers/objects";

const ME: ReplicaId = { namespace: "pepr-system", pod: "pepr-a", boot: "b1" };
const TOKEN = "0123456789abcdef0123456789abcdef";
const IP = "198.18.100.50";
const OPTED_IN = { name: "team-a", labels: { "macvlan.dev/subnet": "lan" } };

function poolLease(over: { orphanedAt?: string; owner?: ReplicaId } = {}): MacvlanLease {
  const l = renderPoolLease("lan", IP, "02:00:00:00:00:50", over.owner ?? ME, TOKEN);
  l.metadata = { ...l.metadata, uid: "pool-uid", resourceVersion: "7" };
  l.metadata.creationTimestamp = new Date("2026-12-01T10:00:00Z");
  if (over.orphanedAt) l.metadata.annotations![ANN_POOL_ORPHANED_AT] = over.orphanedAt;
  return l;
}

const admittedPod = (token = TOKEN, namespace = "team-a") =>
  pod(
    "web-1",
    {
      "macvlan.dev/subnet": "lan",
      "macvlan.dev/ip": IP,
      "macvlan.dev/mac": "02:00:00:00:00:50",
      "macvlan.dev/reservation": token,
    },
    { namespace },
  );

const snapshot = (over: Partial<ResyncSnapshot>): ResyncSnapshot => ({
  leases: [],
  pods: [],
  subnets: [subnet("lan")],
  namespaces: [OPTED_IN, { name: "elsewhere", labels: {} }],
  statefulSets: new Map(),
  confirmedGone: new Set(),
  reservedTtlSeconds: 60,
  now: NOW,
  ...over,
});

const replicaPod = pod("pepr-a", {}, { namespace: "pepr-system" });

test("a pool lease commits to its token without revealing it", t => {
  const l = poolLease();
  const ann = l.metadata!.annotations!;
  t.is(ann[ANN_POOL_OWNER], "pepr-system/pepr-a/b1");
  t.regex(ann[ANN_POOL_COMMITMENT], /^[0-9a-f]{64}$/);
  t.false(JSON.stringify(l).includes(TOKEN));
  t.is(l.spec?.podRef, undefined, "no pod yet");
});

test("only a pod with the token, in a namespace that opted in to the subnet, claims a pool lease", t => {
  const l = poolLease();
  t.is(leaseOfPod(admittedPod(), [l], OPTED_IN), l);
  t.is(leaseOfPod(admittedPod(), [l]), undefined, "without the namespace's labels: no claim");
  t.is(leaseOfPod(admittedPod("f".repeat(32)), [l], OPTED_IN), undefined, "wrong token");
  const commitment = l.metadata!.annotations![ANN_POOL_COMMITMENT];
  t.is(
    leaseOfPod(admittedPod(commitment), [l], OPTED_IN),
    undefined,
    "the public hash opens nothing",
  );
  const unadmitted = { name: "kube-public", labels: { "macvlan.dev/subnet": "lan" } };
  t.is(
    leaseOfPod(admittedPod(TOKEN, "kube-public"), [l], unadmitted),
    undefined,
    "a namespace the webhooks never see: the pod's author wrote the token, not admission",
  );
  const other = { name: "team-a", labels: { "macvlan.dev/subnet": "other" } };
  const asksOther = admittedPod();
  asksOther.metadata!.annotations!["macvlan.dev/subnet"] = "other";
  t.is(leaseOfPod(asksOther, [l], other), undefined, "admission leased on another subnet");
});

test("the namespaces pool claims never come from are the ones the webhooks ignore", t => {
  const pkg = JSON.parse(readFileSync("package.json", "utf8"));
  t.deepEqual([...UNADMITTED_NAMESPACES].sort(), [...pkg.pepr.alwaysIgnore.namespaces].sort());
});

test("the resync keeps a live replica's pool lease, and revokes a gone replica's", t => {
  const l = poolLease();
  const live = planResync(snapshot({ leases: [l], pods: [replicaPod] }));
  t.deepEqual(live.groups, []);
  const gone = planResync(snapshot({ leases: [l] }));
  const [write] = gone.groups.flat();
  t.is(write.op, "patchLease");
  t.is(
    write.op === "patchLease" ? write.annotations?.[ANN_POOL_ORPHANED_AT] : "",
    NOW.toISOString(),
  );
  t.is(write.op === "patchLease" ? write.lease.resourceVersion : "", "7", "compare-and-swap");
});

test("a revoked pool lease is reclaimed only after the TTL since revocation, and never while a pod holds its token", t => {
  const ctx = { livePods: new Set<string>(), claimed: false, subnetDeleting: false };
  const at = (s: number) => new Date(NOW.getTime() - s * 1000).toISOString();
  const base = { ...ctx, reservedTtlSeconds: 60, now: NOW };
  t.deepEqual(planPoolLease(poolLease({ orphanedAt: at(59) }), base), []);
  t.deepEqual(
    planPoolLease(poolLease({ orphanedAt: at(61) }), base).map(w => w.op),
    ["deleteLease"],
  );
  t.deepEqual(planPoolLease(poolLease({ orphanedAt: at(600) }), { ...base, claimed: true }), []);
  // The pool lease was created hours ago: its age alone never makes it reclaimable.
  const old = planResync(snapshot({ leases: [poolLease()], pods: [replicaPod] }));
  t.deepEqual(old.groups, []);
});

test("the replica died after answering: the pod that holds the token is bound, nothing is reclaimed", t => {
  const l = poolLease({ orphanedAt: new Date(NOW.getTime() - 3600_000).toISOString() });
  const plan = planResync(snapshot({ leases: [l], pods: [admittedPod()] }));
  const writes = plan.groups.flat();
  t.false(writes.some(w => w.op === "deleteLease"));
  const patch = writes.find(w => w.op === "patchLease");
  t.truthy(patch);
  if (patch?.op !== "patchLease") return;
  t.is(patch.spec.podRef?.uid, "web-1-uid");
  t.is(patch.annotations?.[ANN_POOL_OWNER], undefined, "an ordinary lease of the pod now");
  t.is(patch.annotations?.["macvlan.dev/reservation"], TOKEN);
  t.is(patch.labels?.["macvlan.dev/pod-namespace"], "team-a");
  t.true(writes.some(w => w.op === "setLeaseStatus" && w.status.phase === "Bound"));
});

test("a deleting subnet revokes even a live replica's pool lease", t => {
  const deleting = subnet("lan");
  deleting.metadata!.deletionTimestamp = NOW;
  const plan = planResync(
    snapshot({ leases: [poolLease()], pods: [replicaPod], subnets: [deleting] }),
  );
  t.deepEqual(
    plan.groups.flat().map(w => w.op),
    ["patchLease"],
  );
});

test("recording a hand-out sets the reservation time first, then the pod's namespace and token", t => {
  const writes = recordWrites(
    poolLease(),
    { token: TOKEN, namespace: "team-a", pod: "web-1" },
    NOW,
  );
  t.deepEqual(
    writes.map(w => w.op),
    ["setLeaseStatus", "patchLease"],
  );
  const [status, patch] = writes;
  t.is(status.op === "setLeaseStatus" ? status.status.reservedAt : "", NOW.toISOString());
  if (patch.op !== "patchLease") return t.fail();
  t.deepEqual(patch.spec.podRef, { namespace: "team-a", name: "web-1" });
  t.is(patch.annotations?.["macvlan.dev/reservation"], TOKEN);
  t.is(patch.annotations?.[ANN_POOL_OWNER], undefined);
  t.deepEqual(
    recordWrites(
      { ...poolLease(), spec: { ...poolLease().spec!, podRef: { namespace: "x" } } },
      { token: TOKEN, namespace: "team-a" },
      NOW,
    ),
    [],
    "not a pool lease any more: nothing",
  );
});

test("a restarted replica revokes what its earlier process pre-leased, not others'", t => {
  const earlier = poolLease({ owner: { ...ME, boot: "b0" } });
  const other = poolLease({ owner: { ...ME, pod: "pepr-b", boot: "b0" } });
  const mine = poolLease();
  const writes = staleIncarnationWrites([earlier, other, mine], ME, NOW);
  t.is(writes.length, 1);
  t.is(
    writes[0].op === "patchLease" ? writes[0].annotations?.[ANN_POOL_OWNER] : "",
    "pepr-system/pepr-a/b0",
  );
});

test("pool size follows the hand-out rate, within min and max, and never above 1/8 of what is free", t => {
  const at = (free: bigint, recentHandouts: number, idle = false) =>
    poolTarget({ free, recentHandouts, idle, min: 8, max: 64 });
  t.deepEqual(at(10_000n, 0), { fill: 8, keep: 64 });
  t.deepEqual(
    at(10_000n, 20),
    { fill: 20, keep: 64 },
    "refill to the rate; keep what a burst made",
  );
  t.deepEqual(at(10_000n, 500), { fill: 64, keep: 64 });
  t.deepEqual(at(100n, 500), { fill: 12, keep: 12 }, "1/8 of the free addresses");
  t.deepEqual(at(7n, 500), { fill: 0, keep: 0 }, "near full: no pool");
  t.deepEqual(at(10_000n, 0, true), { fill: 0, keep: 0 }, "idle: everything goes back");
});

test("a fixed-IP request asks a live pool lease back by compare-and-swap; the mark never follows the lease to a pod", t => {
  const l = poolLease();
  t.true(isReturnable(l));
  t.false(
    isReturnable(poolLease({ orphanedAt: "2026-12-01T10:00:00Z" })),
    "revoked: the watcher decides",
  );
  const w = returnRequestWrite(l, NOW);
  t.is(w.op, "patchLease");
  if (w.op !== "patchLease") return;
  t.deepEqual(w.lease, { name: l.metadata!.name!, uid: "pool-uid", resourceVersion: "7" });
  t.is(w.annotations?.[ANN_POOL_RETURN_REQUESTED], NOW.toISOString());
  t.is(w.annotations?.[ANN_POOL_COMMITMENT], l.metadata!.annotations![ANN_POOL_COMMITMENT]);
  // Handed out before the owner saw the request: the pod's lease does not carry it.
  const asked = structuredClone(l);
  asked.metadata!.annotations = w.annotations;
  const patch = recordWrites(asked, { token: TOKEN, namespace: "team-a" }, NOW).find(
    x => x.op === "patchLease",
  );
  t.truthy(patch);
  if (patch?.op === "patchLease") t.false(ANN_POOL_RETURN_REQUESTED in (patch.annotations ?? {}));
});

test("a live replica's pool lease older than the max age is revoked: one its owner lost track of cannot stay", t => {
  const l = poolLease(); // created 2026-12-01T10:00:00Z
  const ctx = {
    livePods: new Set(["pepr-system/pepr-a"]),
    claimed: false,
    subnetDeleting: false,
    reservedTtlSeconds: 60,
    maxAgeSeconds: 600,
  };
  t.deepEqual(
    planPoolLease(l, { ...ctx, now: new Date("2026-12-01T10:09:00Z") }),
    [],
    "9 min: kept",
  );
  const [w] = planPoolLease(l, { ...ctx, now: new Date("2026-12-01T10:11:00Z") });
  t.is(w?.op, "patchLease", "11 min: revoked");
  if (w?.op === "patchLease") t.truthy(w.annotations?.[ANN_POOL_ORPHANED_AT]);
  t.deepEqual(
    planPoolLease(l, { ...ctx, maxAgeSeconds: undefined, now: new Date("2026-12-02T10:00:00Z") }),
    [],
    "no max age: kept while the owner lives",
  );
});
