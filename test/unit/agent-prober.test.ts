// The probing loop with a fake runner (agent/probe/prober.ts) and the helper's output parser
// (agent/probe/runner.ts); the controller writes the conflicts into the node's status entry.
import test from "ava";
import type { MacvlanLease, MacvlanSubnet } from "../../crds/types";
import { ConflictProber, probeSubnets } from "../../agent/probe/prober";
import { parseProbeOutput, type ProbeRunner } from "../../agent/probe/runner";
import { nodeEntry, sameEntry } from "../../agent/status";

const subnet: MacvlanSubnet = {
  metadata: { name: "lan" },
  spec: {
    master: "eth0",
    cidr: "198.18.120.0/24",
    ranges: [{ start: "198.18.120.10", end: "198.18.120.14" }],
  },
};
const lease = (
  ip: string,
  o: Partial<MacvlanLease["spec"]> = {},
  phase = "Bound",
): MacvlanLease => ({
  metadata: { name: ip },
  spec: { subnet: "lan", ip, mac: "02:00:00:00:00:0b", ...o },
  status: { phase: phase as never },
});
const ready = { lan: { ready: true, reason: "ShimReady" as const, message: "", parent: "eth0" } };

test("the helper's JSON lines are read; junk and malformed MACs are skipped", t => {
  t.deepEqual(
    parseProbeOutput(
      '{"ip":"198.18.120.7","mac":"AA:bb:cc:00:00:07"}\nnoise\n{"ip":"x","mac":"zz"}\n\n{"ip":"2001:db8::7","mac":"aa:bb:cc:00:00:08"}\n',
    ),
    [
      { ip: "198.18.120.7", mac: "aa:bb:cc:00:00:07" },
      { ip: "2001:db8::7", mac: "aa:bb:cc:00:00:08" },
    ],
  );
});

test("only subnets ready on this node are probed, on their parent; bound leases are marked", t => {
  const subs = probeSubnets(
    [subnet, { ...subnet, metadata: { name: "down" } }],
    [
      lease("198.18.120.11", { podRef: { namespace: "a", uid: "u" } }),
      lease("198.18.120.12", {}, "Reserved"),
    ],
    { ...ready, down: { ready: false, reason: "ParentMissing", message: "", parent: "eth9" } },
  );
  t.deepEqual(
    subs.map(s => [s.name, s.parent]),
    [["lan", "eth0"]],
  );
  t.deepEqual(
    subs[0].leases.map(l => [l.ip, l.bound]),
    [
      ["198.18.120.11", true],
      ["198.18.120.12", false],
    ],
  );
});

test("a foreign answer becomes a reported conflict once; the controller is told; a failed probe expires nothing", async t => {
  let now = 1_000_000;
  let changed = 0;
  let fail = false;
  const calls: [string, string[]][] = [];
  const runner: ProbeRunner = {
    probe: async (dev, ips) => {
      calls.push([dev, ips]);
      if (fail) throw new Error("no CAP_NET_RAW");
      return ips.includes("198.18.120.13")
        ? [{ ip: "198.18.120.13", mac: "aa:bb:cc:00:00:0d" }]
        : [];
    },
  };
  const p = new ConflictProber(
    { subnets: () => [subnet], leases: () => [], readiness: () => ready, changed: () => changed++ },
    {
      runner,
      now: () => now,
      settings: { ratePerSecond: 10, maxBatch: 10, holdMs: 5_000, recheckMs: 1_000 },
    },
  );
  await p.tick();
  t.deepEqual(calls[0], [
    "eth0",
    ["198.18.120.10", "198.18.120.11", "198.18.120.12", "198.18.120.13", "198.18.120.14"],
  ]);
  t.is(changed, 1);
  t.deepEqual(
    p.conflicts("lan").map(c => [c.ip, c.mac]),
    [["198.18.120.13", "aa:bb:cc:00:00:0d"]],
  );
  now += 1_000;
  await p.tick();
  t.is(changed, 1, "still there: nothing new");
  fail = true;
  now += 10_000;
  await p.tick();
  t.is(p.conflicts("lan").length, 1, "a failed probe is no evidence the host left");
  t.is(p.sent, 6);

  const e = nodeEntry(
    "n1",
    { ready: true, reason: "ShimReady", message: "m", conflicts: p.conflicts("lan") },
    new Date(0),
  );
  t.is(e.conflicts?.[0].ip, "198.18.120.13");
  t.false(sameEntry(e, { ...e, conflicts: [] }), "a changed set is a status write");
});
