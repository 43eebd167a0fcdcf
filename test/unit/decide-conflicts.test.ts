// Conflict leases from the agents' reports (lib/decide/conflicts.ts) and how the subnet status
// counts them (lib/decide/subnet-status.ts).
import test from "ava";
import type { MacvlanLease, MacvlanSubnet, NodeReadiness } from "../../crds/types";
import { planConflictLeases, reportedConflicts } from "../../lib/decide/conflicts";
import { countStatus } from "../../lib/decide/subnet-status";
import { ANN_POOL_COMMITMENT, ANN_POOL_OWNER } from "../../lib/decide/pool";

const NOW = new Date("2026-12-02T05:00:00Z");
const subnet = (nodes: NodeReadiness[] = []): MacvlanSubnet => ({
  metadata: { name: "lan", uid: "u1", generation: 1 },
  spec: {
    master: "eth0",
    cidr: "198.18.120.0/24",
    ranges: [{ start: "198.18.120.10", end: "198.18.120.19" }],
  },
  status: { nodes },
});
const node = (name: string, conflicts: { ip: string; mac: string }[]): NodeReadiness => ({
  node: name,
  ready: true,
  conflicts: conflicts.map(c => ({ ...c, since: "2026-12-02T04:59:00Z" })),
});
const lease = (ip: string, phase: string, o: Partial<MacvlanLease> = {}): MacvlanLease => ({
  metadata: {
    name: `lan-${ip.replace(/\./g, "-")}`,
    uid: `uid-${ip}`,
    resourceVersion: "7",
    ...o.metadata,
  },
  spec: { subnet: "lan", ip, mac: "02:00:00:00:00:01", ...o.spec },
  status: { phase: phase as never },
});

test("a reported address without a lease becomes a Conflict lease with the foreign MAC, and a Warning", t => {
  const s = subnet([
    node("n2", [{ ip: "198.18.120.15", mac: "aa:bb:cc:00:00:01" }]),
    node("n1", [{ ip: "198.18.120.15", mac: "aa:bb:cc:00:00:02" }]),
  ]);
  t.is(reportedConflicts(s).get("198.18.120.15")?.node, "n1", "first reporter by node name");
  const [g] = planConflictLeases(s, [], NOW);
  t.like(g[0], {
    op: "createLease",
    lease: {
      metadata: { name: "lan-198-18-120-15", labels: { "macvlan.dev/subnet": "lan" } },
      spec: { subnet: "lan", ip: "198.18.120.15", mac: "aa:bb:cc:00:00:02", node: "n1" },
    },
    status: { phase: "Conflict", reservedAt: "2026-12-02T04:59:00Z" },
  });
  t.like(g[1], { op: "event", type: "Warning", reason: "AddressConflict" });
  t.is(
    g[0].op === "createLease" && g[0].lease.metadata?.annotations?.["macvlan.dev/conflict"],
    "true",
    "marked from creation, before its status says Conflict",
  );
  t.is(g[0].op === "createLease" && g[0].lease.spec?.podRef, undefined, "no pod");
});

test("an existing Conflict lease is kept (its MAC followed); one nobody reports is deleted", t => {
  const s = subnet([node("n1", [{ ip: "198.18.120.15", mac: "aa:bb:cc:00:00:03" }])]);
  const kept = lease("198.18.120.15", "Conflict", {
    spec: { subnet: "lan", ip: "198.18.120.15", mac: "aa:bb:cc:00:00:03" },
  });
  t.deepEqual(planConflictLeases(s, [kept], NOW), []);
  const moved = { ...kept, spec: { ...kept.spec!, mac: "aa:bb:cc:00:00:04" } };
  t.like(planConflictLeases(s, [moved], NOW)[0][0], {
    op: "patchLease",
    spec: { mac: "aa:bb:cc:00:00:03" },
  });
  const stale = lease("198.18.120.16", "Conflict");
  const [g] = planConflictLeases(s, [kept, stale], NOW);
  t.like(g[0], {
    op: "deleteLease",
    lease: { name: "lan-198-18-120-16", uid: "uid-198.18.120.16", resourceVersion: "7" },
  });
  t.like(g[1], { op: "event", type: "Normal", reason: "AddressConflictCleared" });
});

test("an unbound lease at a reported address is withdrawn; a pod's lease is never taken", t => {
  const s = subnet([
    node("n1", [
      { ip: "198.18.120.11", mac: "aa:bb:cc:00:00:0b" },
      { ip: "198.18.120.12", mac: "aa:bb:cc:00:00:0c" },
      { ip: "198.18.120.13", mac: "aa:bb:cc:00:00:0d" },
    ]),
  ]);
  const released = lease("198.18.120.11", "Released");
  const pool = lease("198.18.120.12", "Reserved", {
    metadata: {
      name: "lan-198-18-120-12",
      annotations: { [ANN_POOL_OWNER]: "r1", [ANN_POOL_COMMITMENT]: "c" },
    },
  });
  const bound = lease("198.18.120.13", "Bound", {
    spec: {
      subnet: "lan",
      ip: "198.18.120.13",
      mac: "02:00:00:00:00:0d",
      podRef: { namespace: "a", name: "p", uid: "u" },
    },
  });
  const groups = planConflictLeases(s, [released, pool, bound], NOW);
  t.deepEqual(
    groups.map(g => [g[0].op, g[0].op === "deleteLease" ? g[0].lease.name : ""]),
    [
      ["deleteLease", "lan-198-18-120-11"],
      ["deleteLease", "lan-198-18-120-12"],
    ],
  );
});

test("a terminating subnet records nothing", t => {
  const s = subnet([node("n1", [{ ip: "198.18.120.15", mac: "aa:bb:cc:00:00:01" }])]);
  s.metadata!.deletionTimestamp = NOW;
  t.deepEqual(planConflictLeases(s, [], NOW), []);
});

test("status: conflicts are counted apart, neither allocated nor free", t => {
  const s = subnet();
  const st = countStatus(
    s,
    [
      lease("198.18.120.10", "Bound"),
      lease("198.18.120.11", "Conflict"),
      lease("198.18.120.12", "Conflict"),
    ],
    NOW,
  );
  t.is(st.total, "10");
  t.is(st.allocated, 1);
  t.is(st.conflicts, 2);
  t.is(st.free, "7");
  t.regex(st.conditions![0].message, /7 of 10 addresses free; 2 in use on the LAN by other hosts/);
  t.is(countStatus(s, [], NOW).conflicts, 0);
});
