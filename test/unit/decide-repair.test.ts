// The resync planner: one poisoned object never stops the others; sticky leaks; stale reservations.
import test from "ava";
import {
  leasesMissingTheirPod,
  macProblem,
  planResync,
  ResyncSnapshot,
} from "../../lib/decide/repair";
import { Write } from "../../lib/decide/writes";
import { NOW, admitted, lease, pod, subnet } from "./helpers/objects";

const snapshot = (over: Partial<ResyncSnapshot>): ResyncSnapshot => ({
  leases: [],
  pods: [],
  subnets: [subnet("lan"), subnet("other", { cidr: "198.18.101.0/24" })],
  namespaces: [{ name: "team-a", labels: { "macvlan.dev/subnet": "lan" } }],
  statefulSets: new Map(),
  confirmedGone: new Set(),
  reservedTtlSeconds: 60,
  now: NOW,
  ...over,
});
const flat = (groups: Write[][]) =>
  groups.flat().map(w => (w.op === "event" ? `event:${w.reason}` : w.op));

test("a pod with a malformed address is reported by name and the other repairs still run", t => {
  const poisoned = pod(
    "bad",
    { "macvlan.dev/subnet": "lan", "macvlan.dev/ip": "198.18.100.999" },
    { namespace: "kube-public" },
  );
  const orphan = lease({ ip: "198.18.100.20", uid: "gone-uid", pod: "gone", phase: "Bound" });
  const plan = planResync(
    snapshot({
      pods: [poisoned],
      leases: [orphan],
      confirmedGone: new Set([orphan.metadata!.name!]),
    }),
  );
  t.deepEqual(plan.malformed, ["pod kube-public/bad"]);
  const events = plan.groups.flat().filter(w => w.op === "event");
  t.true(
    events.some(e => e.op === "event" && e.reason === "MalformedObject" && e.target.name === "bad"),
  );
  t.true(flat(plan.groups).includes("setLeaseStatus"), "the orphaned lease is still released");
});

test("a malformed lease is reported, not thrown", t => {
  const broken = lease();
  delete (broken.spec as { ip?: string }).ip;
  const plan = planResync(snapshot({ leases: [broken] }));
  t.is(plan.malformed.length, 1);
});

test("a lease whose pod is missing from the list is released only once a GET confirmed it gone", t => {
  const orphan = lease({ uid: "gone-uid", pod: "gone", phase: "Bound" });
  t.deepEqual(leasesMissingTheirPod({ leases: [orphan], pods: [] }), [orphan]);
  t.deepEqual(planResync(snapshot({ leases: [orphan] })).groups, []);
  const plan = planResync(
    snapshot({ leases: [orphan], confirmedGone: new Set([orphan.metadata!.name!]) }),
  );
  t.deepEqual(flat(plan.groups), [
    "setLeaseStatus",
    "event:AddressReleased",
    "event:LeaseRepaired",
  ]);
});

test("a StatefulSet moved to another subnet: the old ordinal lease is released, the new one kept", t => {
  const sts = new Map([["team-a/db", { metadata: { uid: "sts" }, spec: { replicas: 1 } }]]);
  const old = lease({
    ip: "198.18.100.30",
    owner: { name: "db", ordinal: 0 },
    created: "2026-12-01T10:00:00Z",
  });
  const fresh = lease({
    subnet: "other",
    ip: "198.18.101.30",
    uid: "db-0-uid",
    phase: "Bound",
    owner: { name: "db", ordinal: 0 },
    created: "2026-12-01T11:30:00Z",
  });
  const live = pod("db-0", admitted("198.18.101.30", "t2", "other"), {
    uid: "db-0-uid",
    owner: "db",
  });
  const plan = planResync(snapshot({ leases: [old, fresh], pods: [live], statefulSets: sts }));
  const released = plan.groups
    .flat()
    .filter(w => w.op === "setLeaseStatus" && w.status.phase === "Released");
  t.is(released.length, 1);
  t.is(released[0].op === "setLeaseStatus" ? released[0].lease.name : "", old.metadata!.name!);
});

test("a reservation nobody claimed is deleted after the TTL, by precondition; a claimed one is bound", t => {
  const stale = lease({ ip: "198.18.100.40", token: "t-stale", created: "2026-12-01T11:00:00Z" });
  stale.status!.reservedAt = "2026-12-01T11:00:00Z";
  const claimed = lease({ ip: "198.18.100.41", token: "t-live" });
  const p = pod("web-2", admitted("198.18.100.41", "t-live"));
  const plan = planResync(snapshot({ leases: [stale, claimed], pods: [p] }));
  const writes = plan.groups.flat();
  const del = writes.find(w => w.op === "deleteLease");
  t.is(del?.op === "deleteLease" ? del.lease.resourceVersion : "", "100");
  t.true(writes.some(w => w.op === "patchLease" && w.lease.name === claimed.metadata!.name));
});

test("released leases are scheduled for deletion after their subnet's reuse delay", t => {
  const released = lease({ phase: "Released", releasedAt: "2026-12-01T11:59:50Z" });
  const plan = planResync(snapshot({ leases: [released] }));
  t.deepEqual(
    plan.expiries.map(e => e.dueMs),
    [Date.parse("2026-12-01T11:59:50Z") + 30_000],
  );
});

test("a pod that claims another tenant's subnet by annotation gets no lease, only a warning", t => {
  const squatter = pod("sq", admitted("198.18.101.5", "x", "other"), { namespace: "team-a" });
  const locked = subnet("other", { cidr: "198.18.101.0/24", namespaces: ["team-b"] });
  const plan = planResync(snapshot({ pods: [squatter], subnets: [subnet("lan"), locked] }));
  t.deepEqual(flat(plan.groups), ["event:AddressUnprotected"]);
});

test("a fixed MAC must be unicast and not held by another lease of the subnet", t => {
  const leases = [lease({ ip: "198.18.100.10", mac: "02:00:00:00:00:10" })];
  t.regex(macProblem("02:00:00:00:00:10", "lan", leases)!, /held by lease lan-198-18-100-10/);
  t.regex(macProblem("02:00:00:00:00:10".toUpperCase(), "lan", leases)!, /held by lease/);
  t.is(
    macProblem("02:00:00:00:00:10", "other", leases),
    undefined,
    "another subnet's MAC is no conflict",
  );
  t.regex(macProblem("01:00:5e:00:00:01", "lan", leases)!, /multicast/i);
  t.is(macProblem("02:00:00:00:00:11", "lan", leases), undefined);
});
