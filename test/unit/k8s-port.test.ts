// The Kubernetes port's rules: errors read right, writes applied in order with chained
// preconditions, a conflict decided again on a fresh read; the watcher's bind through the port.
import test from "ava";
import { applyWrites, decideAndApply } from "../../capabilities/k8s/apply";
import { bindPodLease, releasePodLease } from "../../capabilities/leases/lifecycle";
import { describe, isConflict, isTransportFailure } from "../../lib/k8s/errors";
import { preconditionOf } from "../../lib/decide/writes";
import { FakePort } from "./helpers/fake-port";
import { admitted, lease, pod, subnet } from "./helpers/objects";
import { a } from "pepr";
import { boundAddressesOf, podView } from "../../capabilities/services/expose";

test("a failed JSON-patch test (422, the API server's generic message) is a conflict", t => {
  t.true(
    isConflict({
      status: 422,
      data: { message: "the server rejected our request due to an error in our request" },
    }),
  );
  t.true(isConflict({ status: 409, data: { reason: "Conflict" } }));
  t.false(isConflict({ status: 409, data: { reason: "AlreadyExists" } }));
  t.false(isConflict({ status: 422, data: { message: "spec.ip: Invalid value" } }));
});

test("a network failure reads as the API server being unreachable, never as a 400", t => {
  const kfc = {
    ok: false,
    status: 400,
    statusText: "fetch failed",
    e: { message: "fetch failed", cause: { code: "ECONNREFUSED" } },
  };
  t.true(isTransportFailure(kfc));
  t.is(describe(kfc), "the API server could not be reached (ECONNREFUSED); retry");
  t.is(describe({ status: 400, data: { message: "spec.cidr: bad" } }), "spec.cidr: bad");
});

test("a lease's writes chain: the status write tests the resourceVersion the patch produced", async t => {
  const port = new FakePort();
  const held = port.put(lease({ token: "tok" }));
  const lock = preconditionOf(held);
  const result = await applyWrites(port, [
    { op: "patchLease", lease: lock, spec: { node: "node-a" } },
    { op: "setLeaseStatus", lease: lock, status: { phase: "Bound" } },
  ]);
  t.is(result, "done");
  t.is(port.leases.get(lock.name)?.status?.phase, "Bound");
});

test("a stale precondition stops the writes and reports a conflict; decideAndApply decides again", async t => {
  const port = new FakePort();
  const held = port.put(lease({ token: "tok" }));
  const stale = { ...preconditionOf(held), resourceVersion: "1" };
  t.is(await applyWrites(port, [{ op: "deleteLease", lease: stale }]), "conflict");
  t.true(port.leases.has(stale.name), "nothing was deleted on a stale view");
  let decisions = 0;
  const result = await decideAndApply(port, async () => {
    decisions++;
    const fresh = await port.getLease(stale.name);
    return [{ op: "deleteLease", lease: decisions === 1 ? stale : preconditionOf(fresh!) }];
  });
  t.is(result, "done");
  t.is(decisions, 2);
  t.false(port.leases.has(stale.name));
});

test("the watcher binds admission's lease by token through the port, and never one of another pod", async t => {
  const port = new FakePort();
  const mine = port.put(lease({ token: "tok" }));
  const p = pod("web-1", admitted("198.18.100.10", "tok")) as a.Pod;
  await bindPodLease(p, port);
  t.is(port.leases.get(mine.metadata!.name!)?.spec?.podRef?.uid, "web-1-uid");
  t.is(port.leases.get(mine.metadata!.name!)?.status?.phase, "Bound");
  // Another pod copying the token and address gets nothing: the lease is bound to web-1.
  const copycat = pod("copy", admitted("198.18.100.10", "tok"), { uid: "copy-uid" }) as a.Pod;
  port.subnets.set("lan", subnet("lan"));
  port.writes = [];
  await bindPodLease(copycat, port);
  t.is(port.leases.get(mine.metadata!.name!)?.spec?.podRef?.uid, "web-1-uid");
  t.false(port.writes.some(w => w.startsWith("create") || w.startsWith("patch")));
  t.true(port.events.some(e => e.reason === "AddressUnprotected" && e.target.name === "copy"));
});

test("an annotation edit to another tenant's subnet makes no lease there", async t => {
  const port = new FakePort();
  port.subnets.set("other", subnet("other", { cidr: "198.18.101.0/24", namespaces: ["team-b"] }));
  port.namespaces = [{ name: "team-a", labels: { "macvlan.dev/subnet": "lan" } }];
  const edited = pod("web-1", admitted("198.18.101.50", "forged", "other")) as a.Pod;
  await bindPodLease(edited, port);
  t.is(port.leases.size, 0);
  t.true(port.events.some(e => e.reason === "AddressUnprotected"));
});

test("a delete event for a pod that still lives releases nothing", async t => {
  const port = new FakePort();
  const held = port.put(lease({ token: "tok", uid: "web-1-uid", pod: "web-1", phase: "Bound" }));
  const p = pod("web-1", admitted("198.18.100.10", "tok")) as a.Pod;
  port.pods.set("team-a/web-1", p);
  await releasePodLease(p, port);
  t.is(port.leases.get(held.metadata!.name!)?.status?.phase, "Bound");
  port.pods.clear();
  port.subnets.set("lan", subnet("lan"));
  await releasePodLease(p, port);
  t.is(port.leases.get(held.metadata!.name!)?.status?.phase, "Released");
});

test("a Service twin publishes a pod's Bound lease address, never its macvlan.dev/ip annotation", t => {
  const liar = pod("liar", { "macvlan.dev/ip": "198.18.100.10" }, { uid: "liar-uid" }) as a.Pod;
  const bound = lease({ ip: "198.18.100.10", uid: "victim-uid", phase: "Bound" });
  t.deepEqual(podView(liar, [bound]).ips, []);
  const own = lease({ ip: "198.18.100.20", uid: "liar-uid", phase: "Bound" });
  t.deepEqual(podView(liar, [bound, own]).ips, ["198.18.100.20"]);
  t.deepEqual(
    boundAddressesOf(liar, [lease({ ip: "198.18.100.20", uid: "liar-uid", phase: "Reserved" })]),
    [],
  );
});
