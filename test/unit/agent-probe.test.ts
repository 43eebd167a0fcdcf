// LAN conflict probing decisions (agent/probe/plan.ts): what is probed when, at what rate, and
// what the answers mean. No sockets.
import test from "ava";
import {
  applyAnswers,
  emptyProbeState,
  planProbes,
  reportedConflicts,
  type ProbeSettings,
  type ProbeState,
  type ProbeSubnet,
} from "../../agent/probe/plan";
import { usablePool } from "../../lib/ipam/pool";

const S: ProbeSettings = {
  ratePerSecond: 10,
  maxBatch: 10,
  recheckMs: 5_000,
  sweepIntervalMs: 60_000,
  holdMs: 20_000,
};
const T0 = 1_000_000;

const subnet = (
  o: Partial<ProbeSubnet> = {},
  range = ["198.18.120.10", "198.18.120.29"],
): ProbeSubnet => ({
  name: "lan",
  parent: "eth0",
  pool: usablePool("lan", {
    cidr: "198.18.120.0/24",
    ranges: [{ start: range[0], end: range[1] }],
  }),
  leases: [],
  ...o,
});

test("rate: the first tick sends at most one second's worth, then the bucket refills with time", t => {
  const sub = subnet();
  const a = planProbes([sub], emptyProbeState(), T0, S);
  t.is(a.targets.length, 10);
  const b = planProbes([sub], a.state, T0 + 300, S);
  t.is(b.targets.length, 3, "300 ms at 10/s");
  const c = planProbes([sub], b.state, T0 + 300 + 10_000, S);
  t.is(c.targets.length, 7, "capped by maxBatch, and only 7 free addresses are not probed yet");
});

test("sweep: free addresses in order from a wrapping cursor, each at most every sweepIntervalMs", t => {
  const sub = subnet({
    leases: [{ ip: "198.18.120.11", mac: "02:00:00:00:00:0b", phase: "Bound", bound: true }],
  });
  const a = planProbes([sub], emptyProbeState(), T0, S);
  t.deepEqual(
    a.targets.map(x => x.ip),
    ["198.18.120.10", ...Array.from({ length: 9 }, (_, i) => `198.18.120.${12 + i}`)],
    "the bound lease's address is skipped",
  );
  t.true(a.targets.every(x => x.why === "sweep" && x.parent === "eth0"));
  const b = planProbes([sub], a.state, T0 + 1000, S);
  t.deepEqual(b.targets.map(x => x.ip).slice(0, 2), ["198.18.120.21", "198.18.120.22"]);
  const c = planProbes([sub], b.state, T0 + 2000, S);
  t.false(
    c.targets.some(x => x.ip === "198.18.120.10"),
    "wrapped, but not due again yet",
  );
  const d = planProbes([sub], c.state, T0 + 2000 + S.sweepIntervalMs, S);
  t.true(
    d.targets.some(x => x.ip === "198.18.120.10"),
    "due again after sweepIntervalMs",
  );
});

test("priority: unbound leases (the next hand-outs) and known conflicts before the sweep", t => {
  const sub = subnet({
    leases: [
      { ip: "198.18.120.25", mac: "02:00:00:00:00:19", phase: "Reserved", bound: false },
      { ip: "198.18.120.26", mac: "02:00:00:00:00:1a", phase: "Released", bound: false },
      { ip: "198.18.120.27", mac: "02:00:00:00:00:1b", phase: "Bound", bound: true },
      { ip: "198.18.120.28", mac: "aa:bb:cc:00:00:01", phase: "Conflict", bound: false },
    ],
  });
  const state: ProbeState = {
    ...emptyProbeState(),
    conflicts: new Map([
      [
        "lan|198.18.120.28",
        {
          subnet: "lan",
          ip: "198.18.120.28",
          mac: "aa:bb:cc:00:00:01",
          since: T0 - 1,
          lastSeen: T0 - 1,
        },
      ],
    ]),
  };
  const a = planProbes([sub], state, T0, S);
  t.deepEqual(
    a.targets.slice(0, 3).map(x => [x.ip, x.why]),
    [
      ["198.18.120.25", "unbound"],
      ["198.18.120.26", "unbound"],
      ["198.18.120.28", "conflict"],
    ],
  );
  t.false(
    a.targets.some(x => x.ip === "198.18.120.27"),
    "a bound pod's address is never probed",
  );
  const b = planProbes([sub], a.state, T0 + 1000, S);
  t.false(
    b.targets.some(x => x.why !== "sweep"),
    "rechecked only after recheckMs",
  );
  const c = planProbes([sub], b.state, T0 + S.recheckMs, S);
  t.deepEqual(
    c.targets.filter(x => x.why !== "sweep").map(x => x.ip),
    ["198.18.120.25", "198.18.120.26", "198.18.120.28"],
  );
});

test("the sweep budget is shared between subnets; IPv6 pools sweep too; a /64 costs no more", t => {
  const six: ProbeSubnet = {
    name: "lan6",
    parent: "eth0",
    pool: usablePool("lan6", { cidr: "2001:db8:120::/64" }),
    leases: [],
  };
  const a = planProbes([subnet(), six], emptyProbeState(), T0, S);
  t.is(a.targets.filter(x => x.subnet === "lan").length, 5);
  t.deepEqual(
    a.targets
      .filter(x => x.subnet === "lan6")
      .map(x => x.ip)
      .slice(0, 2),
    ["2001:db8:120::1", "2001:db8:120::2"],
  );
});

const probe = (ip: string) => ({ subnet: "lan", parent: "eth0", ip, why: "sweep" as const });

test("answers: a foreign MAC is a conflict; our lease's MAC or the node's own are not", t => {
  const sub = subnet({
    leases: [{ ip: "198.18.120.12", mac: "02:00:00:00:00:0C", phase: "Reserved", bound: false }],
  });
  const targets = ["198.18.120.10", "198.18.120.11", "198.18.120.12", "198.18.120.13"].map(probe);
  const r = applyAnswers(
    emptyProbeState(),
    [sub],
    targets,
    [
      { ip: "198.18.120.10", mac: "AA:BB:CC:00:00:0A" },
      { ip: "198.18.120.12", mac: "02:00:00:00:00:0c" },
      { ip: "198.18.120.13", mac: "02:11:11:11:11:11" },
      { ip: "198.18.120.99", mac: "aa:bb:cc:00:00:99" },
    ],
    T0,
    S,
    new Set(["02:11:11:11:11:11"]),
  );
  t.true(r.changed);
  t.deepEqual(reportedConflicts(r.state, "lan"), [
    { ip: "198.18.120.10", mac: "aa:bb:cc:00:00:0a", since: new Date(T0).toISOString() },
  ]);
});

test("answers: a conflict is kept while it answers, dropped after holdMs of silence or when ours answers", t => {
  const sub = subnet();
  const t10 = [probe("198.18.120.10")];
  const foreign = [{ ip: "198.18.120.10", mac: "aa:bb:cc:00:00:0a" }];
  let s = applyAnswers(emptyProbeState(), [sub], t10, foreign, T0, S).state;
  const again = applyAnswers(s, [sub], t10, foreign, T0 + 5_000, S);
  t.false(again.changed, "the same host again: nothing new to report");
  s = again.state;
  const quiet = applyAnswers(s, [sub], t10, [], T0 + 5_000 + S.holdMs - 1, S);
  t.false(quiet.changed, "silent for less than holdMs: still reported");
  t.is(reportedConflicts(quiet.state, "lan").length, 1);
  const gone = applyAnswers(quiet.state, [sub], t10, [], T0 + 5_000 + S.holdMs, S);
  t.true(gone.changed);
  t.deepEqual(reportedConflicts(gone.state, "lan"), []);
  const withLease = subnet({
    leases: [{ ip: "198.18.120.10", mac: "02:00:00:00:00:0a", phase: "Bound", bound: true }],
  });
  const ours = applyAnswers(
    s,
    [withLease],
    t10,
    [{ ip: "198.18.120.10", mac: "02:00:00:00:00:0a" }],
    T0 + 6_000,
    S,
  );
  t.true(ours.changed, "our pod answers now: no conflict any more");
  t.deepEqual(reportedConflicts(ours.state, "lan"), []);
});

test("answers: a Conflict lease's MAC is foreign, and conflicts of a vanished subnet are dropped", t => {
  const sub = subnet({
    leases: [{ ip: "198.18.120.10", mac: "aa:bb:cc:00:00:0a", phase: "Conflict", bound: false }],
  });
  const r = applyAnswers(
    emptyProbeState(),
    [sub],
    [probe("198.18.120.10")],
    [{ ip: "198.18.120.10", mac: "aa:bb:cc:00:00:0a" }],
    T0,
    S,
  );
  t.is(reportedConflicts(r.state, "lan").length, 1);
  const later = applyAnswers(r.state, [], [], [], T0 + 1, S);
  t.true(later.changed);
  t.is(later.state.conflicts.size, 0);
});
