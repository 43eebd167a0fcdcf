// Bind, release and repair decisions: the lease admission made is the only truth.
import test from "ava";
import { bindWrites, repairMissingLease } from "../../lib/decide/bind";
import { claimsOf, isLeaseOf, leaseOfPod } from "../../lib/decide/pods";
import { podGoneWrites, releaseWrites } from "../../lib/decide/release";
import { Write } from "../../lib/decide/writes";
import { NOW, admitted, lease, pod, subnet } from "./helpers/objects";

const ops = (writes: Write[]) => writes.map(w => (w.op === "event" ? `event:${w.reason}` : w.op));
const target = { apiVersion: "v1", kind: "Pod", name: "p" };

test("a pod's lease is the one reserved with its token, or bound to its uid", t => {
  const mine = lease({ token: "tok" });
  const p = pod("web-1", admitted("198.18.100.10", "tok"));
  t.is(leaseOfPod(p, [mine]), mine);
  t.true(isLeaseOf(lease({ uid: "web-1-uid", token: "other" }), p));
  // A token copied from another pod does not take a lease already bound to that pod.
  t.false(isLeaseOf(lease({ token: "tok", uid: "someone-else" }), p));
  // Nor a lease of another namespace.
  t.false(isLeaseOf(lease({ token: "tok", namespace: "team-b" }), p));
  t.is(leaseOfPod(pod("x", {}), [mine]), undefined);
});

test("binding sets uid and node with the lease's resourceVersion as precondition", t => {
  const mine = lease({ token: "tok", rv: "42" });
  const writes = bindWrites(pod("web-1", admitted("198.18.100.10", "tok")), mine, NOW);
  t.deepEqual(ops(writes), ["patchLease", "setLeaseStatus", "event:AddressAllocated"]);
  const [patch, status] = writes;
  if (patch.op !== "patchLease" || status.op !== "setLeaseStatus") return t.fail();
  t.deepEqual(patch.lease, {
    name: mine.metadata!.name,
    uid: mine.metadata!.uid,
    resourceVersion: "42",
  });
  t.deepEqual(patch.spec.podRef, { namespace: "team-a", name: "web-1", uid: "web-1-uid" });
  t.is(patch.spec.node, "node-a");
  t.is(status.status.phase, "Bound");
});

test("annotations edited after admission bind nothing new: admission's lease is bound, with a warning", t => {
  const mine = lease({ token: "tok" });
  const tampered = pod("web-1", { ...admitted("198.18.101.66", "tok", "other") });
  const writes = bindWrites(tampered, mine, NOW);
  t.deepEqual(ops(writes), [
    "patchLease",
    "setLeaseStatus",
    "event:AnnotationsIgnored",
    "event:AddressAllocated",
  ]);
  t.false(writes.some(w => w.op === "createLease"));
});

const repairCtx = {
  subnet: subnet("lan"),
  namespace: { name: "team-a", labels: { "macvlan.dev/subnet": "lan" } },
  addressFree: true,
  now: NOW,
};

test("a missing lease is made again only where admission would have granted it", t => {
  const p = pod("web-1", admitted("198.18.100.10", "tok"));
  const [claim] = claimsOf(p);
  t.deepEqual(ops(repairMissingLease(p, claim, repairCtx)), ["createLease", "event:LeaseRepaired"]);
  const refusals: [string, Partial<typeof repairCtx> & Record<string, unknown>][] = [
    ["another tenant's subnet", { subnet: subnet("lan", { namespaces: ["team-b"] }) }],
    ["a subnet that does not exist", { subnet: undefined }],
    ["an address someone holds", { holder: lease({ namespace: "team-b", pod: "theirs" }) }],
    ["an address outside the pool or cooling", { addressFree: false }],
    [
      "a MAC another lease holds",
      { macProblem: "MAC 02:00:00:00:00:10 is held by lease lan-198-18-100-11" },
    ],
  ];
  for (const [what, over] of refusals) {
    const writes = repairMissingLease(p, claim, { ...repairCtx, ...over });
    t.deepEqual(ops(writes), ["event:AddressUnprotected"], what);
  }
});

test("release carries the lease's uid and resourceVersion; a live pod or another pod's lease is left alone", t => {
  const held = lease({ uid: "web-1-uid", phase: "Bound", rv: "9" });
  const p = pod("web-1", admitted("198.18.100.10", "tok"));
  const ctx = { reuseDelaySeconds: 30, now: NOW };
  const writes = podGoneWrites(p, held, undefined, ctx, target);
  t.deepEqual(ops(writes), ["setLeaseStatus", "event:AddressReleased"]);
  const [w] = writes;
  if (w.op !== "setLeaseStatus") return t.fail();
  t.is(w.lease.resourceVersion, "9");
  t.is(w.status.phase, "Released");
  t.deepEqual(podGoneWrites(p, held, p, ctx, target), [], "the pod still lives (phantom delete)");
  t.deepEqual(
    podGoneWrites(p, lease({ uid: "other-uid", phase: "Bound" }), undefined, ctx, target),
    [],
  );
});

test("a StatefulSet ordinal keeps its lease while wanted, loses it when superseded by another subnet's", t => {
  const held = lease({ uid: "db-0-uid", phase: "Bound", owner: { name: "db", ordinal: 0 } });
  const sts = { metadata: { uid: "sts" }, spec: { replicas: 3 } };
  const kept = releaseWrites(held, "pod deleted", target, {
    statefulSet: sts,
    reuseDelaySeconds: 30,
    now: NOW,
  });
  t.is(kept.outcome, "held");
  const moved = releaseWrites(held, "moved", target, {
    statefulSet: sts,
    superseded: true,
    reuseDelaySeconds: 30,
    now: NOW,
  });
  t.is(moved.outcome, "released");
  const scaled = releaseWrites(held, "scaled", target, {
    statefulSet: { ...sts, spec: { replicas: 0 } },
    reuseDelaySeconds: 30,
    now: NOW,
  });
  t.is(scaled.outcome, "released");
});
