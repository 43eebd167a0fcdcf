// A StatefulSet pod that comes back takes its ordinal's lease even when the replica's cache
// has not yet seen the watcher mark it Reserved (caught on the cluster: the pod came back with a
// second address while its ordinal's lease stayed reserved for it).
import test from "ava";
import { TAKEOVER_ATTEMPTS, takeOverLease } from "../../capabilities/pods/admit";
import { LeaseRequestPlan } from "../../lib/decide/admit";
import { FakePort } from "./helpers/fake-port";
import { lease, subnet } from "./helpers/objects";

const owner = { kind: "StatefulSet" as const, namespace: "team-a", name: "db", ordinal: 1 };
const plan: LeaseRequestPlan = {
  kind: "lease",
  subnet: subnet("lan"),
  fixedIps: [],
  owner,
  singleNic: false,
};

test("a stale cached copy is read again and the ordinal's lease is taken, not a new address", async t => {
  const port = new FakePort();
  const cached = port.put(
    lease({ ip: "198.18.100.61", phase: "Bound", owner, pod: "db-1", uid: "old" }),
  );
  // The watcher marks it Reserved for the ordinal after the cache's copy was made.
  port.put({ ...cached, status: { phase: "Reserved", reservedAt: "2026-12-01T11:30:00Z" } });
  const taken = await takeOverLease(port, cached, plan, "db-1", "tok");
  t.is(taken?.spec?.ip, "198.18.100.61");
  t.is(taken?.metadata?.annotations?.["macvlan.dev/reservation"], "tok");
  t.is(port.writes.filter(w => w.startsWith("patch")).length, 2, "one stale attempt, one that won");
});

test("a lease that keeps changing gives up after the attempts; one gone or re-owned is not taken", async t => {
  const port = new FakePort();
  const cached = port.put(lease({ ip: "198.18.100.62", owner, pod: "db-1" }));
  const real = port.patchLease.bind(port);
  port.patchLease = async (lock, spec, ann) => {
    const current = port.leases.get(lock.name)!;
    port.put(current); // another writer wins every time
    return real(lock, spec, ann);
  };
  t.is(await takeOverLease(port, cached, plan, "db-1", "tok"), undefined);
  t.is(port.writes.length, TAKEOVER_ATTEMPTS);

  const gone = new FakePort();
  const stale = gone.put(lease({ ip: "198.18.100.63", owner, pod: "db-1" }));
  gone.put(stale);
  const fresh = gone.leases.get(stale.metadata!.name!)!;
  fresh.spec!.owner = { ...owner, name: "other" };
  t.is(await takeOverLease(gone, stale, plan, "db-1", "tok"), undefined, "re-owned: not ours");
  t.is(gone.writes.length, 1);
});
