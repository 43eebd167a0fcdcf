// The chaos suite's verdicts (bench/chaos/checks.ts) over fake snapshots: what counts as a
// duplicate, a leak, a pod without its lease, a route mismatch and a status mismatch.
import test from "ava";
import {
  ChaosPod,
  ChaosSnapshot,
  NodeRoutes,
  duplicateAddresses,
  errorSummary,
  faultTable,
  isClean,
  leakedLeases,
  persisting,
  podsWithoutLease,
  restartsBetween,
  shortError,
  routeMismatches,
  statusMismatches,
  verdict,
} from "../../bench/chaos/checks";
import { countStatus } from "../../lib/decide/subnet-status";
import type { KernelRoute } from "../../agent/types";
import { MacvlanLease } from "../../crds/types";
import { NOW, admitted, lease, pod, subnet } from "./helpers/objects";

const SUB = subnet("lan");
const bound = (ip: string, name: string) =>
  lease({ ip, pod: name, uid: `${name}-uid`, phase: "Bound", token: `t-${name}` });
const running = (name: string, ip: string, o: { node?: string; uid?: string } = {}): ChaosPod => {
  const p = pod(name, admitted(ip, `t-${name}`), { node: o.node ?? "node-a", uid: o.uid });
  return { ...p, status: { ...p.status, phase: "Running" } };
};
const ownRoute = (ip: string, dev = "mvshim-1"): KernelRoute => ({
  family: 4,
  dst: `${ip}/32`,
  dev,
  protocol: "77",
  metric: 0,
  type: "unicast",
});
const node = (name: string, routes: KernelRoute[], addresses: string[] = []): NodeRoutes => ({
  node: name,
  routes,
  addresses: new Set(addresses),
});
const withStatus = (leases: MacvlanLease[]) => ({ ...SUB, status: countStatus(SUB, leases, NOW) });

function snapshot(o: Partial<ChaosSnapshot> = {}): ChaosSnapshot {
  const leases = o.leases ?? [];
  return {
    pods: [],
    leases,
    subnets: [withStatus(leases)],
    statefulSets: new Map(),
    nodes: [],
    graceSeconds: 20,
    now: NOW,
    ...o,
  };
}

test("a healthy snapshot is clean: each pod its Bound lease and its route", t => {
  const leases = [bound("198.18.100.10", "a"), bound("198.18.100.11", "b")];
  const s = snapshot({
    pods: [running("a", "198.18.100.10"), running("b", "198.18.100.11", { node: "node-b" })],
    leases,
    nodes: [
      node("node-a", [ownRoute("198.18.100.10")]),
      node("node-b", [ownRoute("198.18.100.11")]),
    ],
  });
  const v = verdict(s);
  t.true(isClean(v), JSON.stringify(v));
});

test("two live pods with one address are a duplicate; a terminating one still counts", t => {
  const gone = {
    ...running("old", "198.18.100.10"),
    metadata: {
      ...running("old", "198.18.100.10").metadata,
      deletionTimestamp: "2026-12-01T11:59:00Z",
    },
  };
  const d = duplicateAddresses({ pods: [running("new", "198.18.100.10"), gone], leases: [] });
  t.deepEqual(d, [{ ip: "198.18.100.10", holders: ["pod team-a/new", "pod team-a/old"] }]);
  // A finished pod's sandbox is gone: not a holder.
  const done = { ...running("old", "198.18.100.10"), status: { phase: "Succeeded" } };
  t.deepEqual(
    duplicateAddresses({ pods: [running("new", "198.18.100.10"), done], leases: [] }),
    [],
  );
});

test("two held leases of one address are a duplicate; a Released one is not", t => {
  const a = bound("198.18.100.10", "a");
  const b = {
    ...bound("198.18.100.10", "b"),
    metadata: { ...bound("198.18.100.10", "b").metadata, name: "misnamed" },
  };
  t.deepEqual(duplicateAddresses({ pods: [], leases: [a, b] }), [
    { ip: "198.18.100.10", holders: [`lease ${a.metadata!.name}`, "lease misnamed"] },
  ]);
  const released = { ...b, status: { phase: "Released" as const } };
  t.deepEqual(duplicateAddresses({ pods: [], leases: [a, released] }), []);
});

test("a held lease whose pod is gone leaks once older than the grace; younger ones wait", t => {
  const l = bound("198.18.100.10", "gone"); // reserved 11:00, an hour before NOW
  t.deepEqual(
    leakedLeases(snapshot({ leases: [l] })).map(f => f.what),
    [l.metadata!.name],
  );
  const young = { ...l, status: { phase: "Bound" as const, reservedAt: "2026-12-01T11:59:50Z" } };
  t.deepEqual(leakedLeases(snapshot({ leases: [young] })), []);
  // Released leases are on their way out: never a leak.
  t.deepEqual(leakedLeases(snapshot({ leases: [{ ...l, status: { phase: "Released" } }] })), []);
});

test("a lease bound to another uid than the live pod of that address leaks", t => {
  const l = bound("198.18.100.10", "a");
  const reborn = running("a", "198.18.100.10", { uid: "other-uid" });
  t.is(leakedLeases(snapshot({ pods: [reborn], leases: [l] })).length, 1);
  t.is(podsWithoutLease({ pods: [reborn], leases: [l] }).length, 1);
});

test("a StatefulSet's held lease and a live replica's pool lease are not leaks", t => {
  const held = lease({ ip: "198.18.100.12", owner: { name: "db", ordinal: 1 } });
  const sts = new Map([["team-a/db", { spec: { replicas: 2 } }]]);
  t.deepEqual(leakedLeases(snapshot({ leases: [held], statefulSets: sts })), []);
  // Scaled below the ordinal: the lease should have gone.
  const small = new Map([["team-a/db", { spec: { replicas: 1 } }]]);
  t.is(leakedLeases(snapshot({ leases: [held], statefulSets: small })).length, 1);

  const pool: MacvlanLease = {
    metadata: {
      name: "lan-198-18-100-13",
      creationTimestamp: new Date("2026-12-01T11:00:00Z"),
      annotations: {
        "macvlan.dev/pool-owner": "pepr-system/adm-1/boot1",
        "macvlan.dev/reservation-sha256": "abc",
      },
    },
    spec: { subnet: "lan", ip: "198.18.100.13", mac: "02:00:00:00:00:13" },
    status: { phase: "Reserved" },
  };
  const replica = pod("adm-1", {}, { namespace: "pepr-system" }) as ChaosPod;
  t.deepEqual(leakedLeases(snapshot({ leases: [pool], pods: [replica] })), []);
  // Its replica gone (kill -9, never back): the pool lease leaks once past the grace.
  t.is(leakedLeases(snapshot({ leases: [pool] })).length, 1);
  // Revoked a moment ago: the resync deletes it after the TTL, not yet a leak.
  const orphaned = {
    ...pool,
    metadata: {
      ...pool.metadata,
      annotations: {
        ...pool.metadata!.annotations,
        "macvlan.dev/pool-orphaned-at": "2026-12-01T11:59:55Z",
      },
    },
  };
  t.deepEqual(leakedLeases(snapshot({ leases: [orphaned], pods: [replica] })), []);
});

test("a Reserved lease opened by a new pod's token is that pod's, before the watcher binds it", t => {
  const l = lease({ ip: "198.18.100.10", token: "t-new" }); // no uid yet
  const p = running("new", "198.18.100.10");
  t.deepEqual(podsWithoutLease({ pods: [p], leases: [l] }), []);
  t.deepEqual(leakedLeases(snapshot({ pods: [p], leases: [l] })), []);
});

test("a pod with an address but no lease, or a Released one, is reported", t => {
  const p = running("a", "198.18.100.10");
  t.deepEqual(podsWithoutLease({ pods: [p], leases: [] }), [
    { what: "team-a/a", detail: "198.18.100.10: no lease lan-198-18-100-10" },
  ]);
  const released = { ...bound("198.18.100.10", "a"), status: { phase: "Released" as const } };
  t.regex(podsWithoutLease({ pods: [p], leases: [released] })[0].detail, /is Released/);
  // A pod without macvlan annotations is none of our business.
  t.deepEqual(podsWithoutLease({ pods: [pod("plain") as ChaosPod], leases: [] }), []);
});

test("routes: a local pod without its route, and an agent route without a pod", t => {
  const s = {
    pods: [running("a", "198.18.100.10")],
    subnets: [SUB],
    nodes: [
      node("node-a", [
        ownRoute("198.18.100.99"),
        // Not the agent's (protocol): never judged.
        { ...ownRoute("198.18.100.98"), protocol: "static" },
      ]),
    ],
  };
  t.deepEqual(routeMismatches(s), [
    { what: "node-a", detail: "no route 198.18.100.10/32 for pod team-a/a" },
    { what: "node-a", detail: "route 198.18.100.99/32 without a local pod" },
  ]);
  // The pod on another node: node-a wants no route for it.
  t.deepEqual(
    routeMismatches({ ...s, pods: [running("a", "198.18.100.99", { node: "node-a" })] }),
    [],
  );
  // A pod that holds the node's own address gets no route (as the agent plans).
  t.deepEqual(
    routeMismatches({
      ...s,
      nodes: [node("node-a", [ownRoute("198.18.100.99")], ["198.18.100.10"])],
    }).map(f => f.detail),
    ["route 198.18.100.99/32 without a local pod"],
  );
});

test("a subnet's status that does not match its leases is reported, field by field", t => {
  const leases = [bound("198.18.100.10", "a")];
  t.deepEqual(statusMismatches({ subnets: [withStatus(leases)], leases }), []);
  const stale = withStatus([]);
  t.deepEqual(statusMismatches({ subnets: [stale], leases }), [
    { what: "lan", detail: "allocated 0 (leases say 1), free 253 (leases say 252)" },
  ]);
});

test("persisting keeps only what both looks found", t => {
  const a = verdict(
    snapshot({ pods: [running("a", "198.18.100.10")], nodes: [node("node-a", [])] }),
  );
  const b = verdict(
    snapshot({ pods: [running("b", "198.18.100.11")], nodes: [node("node-a", [])] }),
  );
  const p = persisting(a, b);
  t.deepEqual(p.unleased, []);
  t.deepEqual(p.routes, []);
  t.deepEqual(persisting(a, a).unleased.length, 1);
});

test("restarts, error summaries and the fault table", t => {
  const s = (name: string, restarts: number) => ({
    name,
    uid: name,
    node: "n",
    restarts,
    ready: true,
  });
  t.deepEqual(
    restartsBetween(
      [s("adm-1", 0), s("watch", 2), s("agent-x", 0)],
      [s("adm-1", 1), s("watch", 2), s("agent-y", 0)],
    ),
    ["adm-1 restarted ×1", "agent-y new", "agent-x gone"],
  );
  const errors = [
    { at: 10, message: "connect ECONNREFUSED 198.18.0.2:6443" },
    { at: 11, message: "connect ECONNREFUSED 198.18.0.2:6443" },
    { at: 50, message: "other" },
  ];
  t.is(errorSummary(errors, 0, 20), "2× connect ECONNREFUSED N.N.N.N:N");
  t.is(
    shortError(
      'POST /api/v1/namespaces/chaos/pods: 403 admission webhook "pepr-pepr-macvlan.pepr.dev" denied the request: macvlan.dev/ip 198.18.101.240 is taken',
    ),
    "denied: macvlan.dev/ip 198.18.101.240 is taken",
  );
  t.is(
    shortError(
      'POST /api/v1/namespaces/chaos/pods: 500 Internal error occurred: failed calling webhook "pepr-pepr-macvlan.pepr.dev": failed to call webhook: Post "https://pepr-pepr-macvlan.pepr-system.svc:443/mutate/x?timeout=10s": EOF',
    ),
    "webhook call failed: failed to call webhook: EOF",
  );
  t.is(
    shortError("GET /api/v1/pods: connect ECONNREFUSED 198.18.0.2:6443"),
    "connect ECONNREFUSED 198.18.0.2:6443",
  );
  t.is(errorSummary(errors, 100, 200), "no load errors");
  const table = faultTable([
    { fault: "restart etcd", at: 12.3, did: "etcd down 2 s | x", convergedAfter: 4.25 },
    { fault: "kill -9 the watcher", at: 40, did: "killed" },
  ]);
  t.true(table.includes("| restart etcd | 12 | etcd down 2 s / x | 4.3 s |"));
  t.true(table.includes("| kill -9 the watcher | 40 | killed | did not converge |"));
});
