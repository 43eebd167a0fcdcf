// The planner's phases one by one (agent/phases/*): parents, shims, routes. agent-plan.test.ts
// covers plan() as a whole; these pin each phase's contract on its own inputs.
import test from "ava";
import {
  shimAlias,
  shimName,
  StepSink,
  type ParentPlan,
  type SubnetPlan,
} from "../../agent/phases/common";
import { groupParents, planParentDevice } from "../../agent/phases/parents";
import {
  desiredPodRoutes,
  diffRoutes,
  foreignRoutes,
  localPods,
  nodeAddresses,
  staleShims,
} from "../../agent/phases/routes";
import {
  planShimAddresses,
  planShimLink,
  planShimSysctlsAndUp,
  planSources,
  shimBlocked,
} from "../../agent/phases/shims";
import type { SubnetLike } from "../../agent/pods";
import type { KernelLink, KernelRoute, KernelState } from "../../agent/types";

let idx = 100;
const link = (name: string, o: Partial<KernelLink> = {}): KernelLink => ({
  name,
  index: idx++,
  mtu: 1500,
  up: true,
  addresses: [],
  ...o,
});
const links = (...ls: KernelLink[]) => new Map(ls.map(l => [l.name, l]));
const kernel = (ls: KernelLink[], routes: KernelRoute[] = []): KernelState => ({
  links: ls,
  routes,
  sysctls: {},
});
const sub = (name: string, spec: Partial<SubnetLike["spec"]>): SubnetLike => ({
  name,
  spec: { master: "eth0", cidr: "198.18.100.0/24", ...spec } as SubnetLike["spec"],
});
const sink = () => new StepSink("parent:eth0", ["lan"]);
const ops = (s: StepSink) => s.steps.map(x => x.action.op);

// ---- parents ----

test("parents: subnets sorted and grouped by effective parent, modes sorted out", t => {
  const g = groupParents([
    sub("b", { vlan: 100 }),
    sub("a", {}),
    sub("c", { master: "eth0.100", mode: "private" }),
    sub("d", { mode: "passthru", master: "eth1" }),
    sub("e", { mtu: 9000 }),
  ]);
  t.deepEqual(Object.keys(g.subnets), ["a", "b", "c", "d", "e"]);
  t.deepEqual(
    g.parents.map(p => [p.name, p.subnets.map(s => s.subnet), p.shimSubnets.map(s => s.subnet)]),
    [
      ["eth0", ["a", "e"], ["a", "e"]],
      ["eth0.100", ["b", "c"], ["b"]],
      ["eth1", ["d"], []],
    ],
  );
  t.is(g.parents[0].wantMtu, 9000);
  t.deepEqual(g.parents[2].passthru, ["d"]);
  t.is(g.subnets.a.family, 4);
  t.is(g.subnets.a.cidr, "198.18.100.0/24");
});

test("parents: an unusable spec is a problem and joins no parent", t => {
  const g = groupParents([
    sub("nomaster", { master: "" }),
    sub("badcidr", { cidr: "nope" }),
    sub("badvlan", { vlan: 5000 }),
    sub("longname", { master: "averyveryverylong", vlan: 12 }),
  ]);
  t.deepEqual(g.parents, []);
  for (const s of Object.values(g.subnets)) t.is(s.problems[0].reason, "InvalidSubnet");
});

const parentOf = (subnets: SubnetLike[]): ParentPlan => groupParents(subnets).parents[0];

test("parent device: missing untagged parent or VLAN master is reported, nothing planned", t => {
  const out = sink();
  const p = parentOf([sub("lan", {})]);
  t.false(planParentDevice(p, links(), out).usable);
  t.is(p.subnets[0].problems[0].reason, "ParentMissing");
  const q = parentOf([sub("lan", { vlan: 7 })]);
  t.false(planParentDevice(q, links(link("eth1")), out).usable);
  t.deepEqual(out.steps, []);
});

test("parent device: VLAN created on its master, master MTU raised and brought up first", t => {
  const out = sink();
  const p = parentOf([sub("lan", { vlan: 7, mtu: 9000 })]);
  const r = planParentDevice(p, links(link("eth0", { up: false })), out);
  t.true(r.usable);
  t.is(r.mtu, 9000);
  t.deepEqual(ops(out), ["setMtu", "setUp", "createVlan", "setUp"]);
  t.true(out.steps.every(s => s.critical));
});

test("parent device: existing parent is raised (never lowered) and brought up; wrong VLAN id conflicts", t => {
  const out = sink();
  const p = parentOf([sub("lan", { mtu: 1400 })]);
  const r = planParentDevice(p, links(link("eth0", { mtu: 1500, up: false })), out);
  t.is(r.mtu, 1500);
  t.deepEqual(ops(out), ["setUp"]);
  const q = parentOf([sub("lan", { vlan: 7 })]);
  const v = link("eth0.7", { kind: "vlan", vlanId: 8 });
  t.false(planParentDevice(q, links(link("eth0"), v), sink()).usable);
  t.is(q.subnets[0].problems[0].reason, "ParentConflict");
});

// ---- shims ----

test("shims: blocked without shim subnets or next to a passthru subnet", t => {
  t.true(shimBlocked(parentOf([sub("p", { mode: "private" })])));
  const p = groupParents([sub("a", {}), sub("b", { mode: "passthru" })]).parents[0];
  t.true(shimBlocked(p));
  t.is(p.shimSubnets[0].problems[0].reason, "ParentConflict");
  t.false(shimBlocked(parentOf([sub("a", {})])));
});

test("shim link: created fresh with the smallest subnet MTU; kept when sound", t => {
  const p = groupParents([sub("a", { mtu: 1400 }), sub("b", { cidr: "198.18.101.0/24" })])
    .parents[0];
  const out = sink();
  const fresh = planShimLink(p, links(link("eth0")), 1500, out)!;
  t.true(fresh.fresh);
  t.like(out.steps[0].action, { op: "createShim", name: shimName("eth0"), mtu: 1400 });
  const sound = link(shimName("eth0"), {
    kind: "macvlan",
    parent: "eth0",
    mode: "bridge",
    alias: shimAlias("eth0"),
    mtu: 1400,
    addrGenMode: "none",
  });
  const out2 = sink();
  const kept = planShimLink(p, links(link("eth0"), sound), 1500, out2)!;
  t.false(kept.fresh);
  t.deepEqual(out2.steps, []);
});

test("shim link: adopted without alias, recreated in the wrong mode, foreign one refused", t => {
  const p = parentOf([sub("a", {})]);
  const name = shimName("eth0");
  const bare = link(name, { kind: "macvlan", parent: "eth0", mode: "bridge" });
  const out = sink();
  t.false(planShimLink(p, links(bare), 1500, out)!.fresh);
  t.deepEqual(ops(out), ["setAlias"]);
  const wrong = link(name, {
    kind: "macvlan",
    parent: "eth0",
    mode: "vepa",
    alias: shimAlias("eth0"),
  });
  const out2 = sink();
  t.true(planShimLink(p, links(wrong), 1500, out2)!.fresh);
  t.deepEqual(ops(out2), ["deleteLink", "createShim"]);
  const foreign = link(name, { kind: "veth" });
  t.is(planShimLink(p, links(foreign), 1500, sink()), undefined);
  t.is(p.shimSubnets[0].problems[0].reason, "ShimConflict");
});

test("shim sysctls: all set on a fresh shim, only drifted ones later; up when down", t => {
  const out = sink();
  planShimSysctlsAndUp({ shim: "s", fresh: true }, kernel([]), true, out);
  t.deepEqual(ops(out), ["setSysctl", "setSysctl", "setSysctl", "setUp"]);
  const k = kernel([]);
  k.sysctls.s = { arpFilter: "1", acceptRa: "1", autoconf: "0" };
  const out2 = sink();
  planShimSysctlsAndUp({ shim: "s", fresh: false, existing: link("s") }, k, true, out2);
  t.deepEqual(
    out2.steps.map(s => s.action),
    [{ op: "setSysctl", key: "net/ipv6/conf/s/accept_ra", value: "0" }],
  );
  const out3 = sink();
  planShimSysctlsAndUp(
    { shim: "s", fresh: false, existing: link("s", { up: false }) },
    k,
    false,
    out3,
  );
  t.deepEqual(ops(out3), ["setUp"]);
});

const v6Parent = () =>
  link("eth0", {
    addresses: [
      { family: 4, local: "198.18.0.11", prefixlen: 16, scope: "global" },
      { family: 6, local: "2001:db8::11", prefixlen: 64, scope: "global" },
    ],
  });

test("sources: node's address inside the subnet, IPv6 source wanted on the shim as /128", t => {
  const p = groupParents([
    sub("lan", { cidr: "198.18.0.0/16" }),
    sub("lan6", { cidr: "2001:db8::/64" }),
  ]).parents[0];
  const eth0 = v6Parent();
  const ctx = { kernel: kernel([eth0]), nodeIPs: [], rpFixed: new Set<string>() };
  const want = planSources(p, { usable: true, parent: eth0 }, ctx, sink());
  t.is(p.shimSubnets[0].src, "198.18.0.11");
  t.is(p.shimSubnets[1].src, "2001:db8::11");
  t.deepEqual([...want.values()], [{ family: 6, address: "2001:db8::11", prefixlen: 128 }]);
});

test("sources: no IPv6 address is a problem, no IPv4 one a note; strict rp_filter outside the subnet", t => {
  const p = groupParents([sub("lan", {}), sub("lan6", { cidr: "2001:db8:1::/64" })]).parents[0];
  const eth0 = link("eth0", {
    addresses: [{ family: 4, local: "198.18.0.11", prefixlen: 16, scope: "global" }],
  });
  const k = kernel([eth0]);
  k.rpFilter = { all: "1" };
  const out = sink();
  planSources(
    p,
    { usable: true, parent: eth0 },
    { kernel: k, nodeIPs: [], rpFilter: "loose", rpFixed: new Set() },
    out,
  );
  t.is(p.shimSubnets[1].problems[0].reason, "NodeAddressMissing");
  t.deepEqual(
    out.steps.map(s => s.action),
    [{ op: "setSysctl", key: "net/ipv4/conf/eth0/rp_filter", value: "2" }],
  );
});

test("shim addresses: stray ones removed, the wanted /128 added once", t => {
  const shim = link("s", {
    addresses: [
      { family: 4, local: "198.18.0.11", prefixlen: 32, scope: "global" },
      { family: 6, local: "2001:db8::11", prefixlen: 128, scope: "global" },
      { family: 6, local: "fe80::1", prefixlen: 64, scope: "link" },
    ],
  });
  const want = new Map([
    ["2001:db8::11", { family: 6 as const, address: "2001:db8::11", prefixlen: 128 }],
    ["2001:db8::12", { family: 6 as const, address: "2001:db8::12", prefixlen: 128 }],
  ]);
  const out = sink();
  planShimAddresses({ shim: "s", fresh: false, existing: shim }, want, out);
  t.deepEqual(
    out.steps.map(s => [s.action.op, "address" in s.action ? s.action.address : ""]),
    [
      ["deleteAddress", "198.18.0.11"],
      ["addAddress", "2001:db8::12"],
    ],
  );
  t.is(want.size, 2, "the caller's map is not consumed");
});

// ---- routes ----

const pod = (name: string, ip: string, node = "node-a") => ({
  metadata: {
    name,
    namespace: "ns",
    annotations: { "macvlan.dev/ip": ip, "macvlan.dev/subnet": "lan" },
  },
  spec: { nodeName: node },
  status: { phase: "Running" },
});

test("local pods: only this node's, one per address, sorted", t => {
  const r = localPods(
    "node-a",
    [
      pod("b", "198.18.100.9"),
      pod("a", "198.18.100.5"),
      pod("dup", "198.18.100.5"),
      pod("x", "198.18.100.6", "node-b"),
    ],
    [sub("lan", {})],
  );
  t.deepEqual(
    r.pods.map(p => p.ip),
    ["198.18.100.5", "198.18.100.9"],
  );
});

test("desired routes: /32 and /128 via the shim with the source; node address and foreign routes skipped", t => {
  const s4: SubnetPlan = {
    subnet: "lan",
    mode: "bridge",
    family: 4,
    src: "198.18.0.11",
    routes: [],
    problems: [],
    notes: [],
  };
  const pods = [
    { pod: "ns/a", ip: "198.18.100.5", subnet: "lan" },
    { pod: "ns/b", ip: "198.18.100.6", subnet: "lan" },
    { pod: "ns/c", ip: "198.18.0.11", subnet: "lan" },
  ];
  const foreign = foreignRoutes(
    kernel(
      [],
      [{ family: 4, dst: "198.18.100.6/32", protocol: "static", metric: 0, type: "unicast" }],
    ),
  );
  const into = new Map();
  desiredPodRoutes(
    [s4],
    "mvshim-x",
    pods as never,
    { nodeAddrs: new Set(["198.18.0.11"]), foreign },
    into,
  );
  t.deepEqual(
    [...into.values()],
    [{ family: 4, dst: "198.18.100.5/32", dev: "mvshim-x", src: "198.18.0.11", subnet: "lan" }],
  );
  t.is(s4.problems[0].reason, "RouteConflict");
  t.regex(s4.notes[0], /node's own address/);
  t.deepEqual(s4.routes, ["198.18.100.5"]);
});

test("route diff: stale and duplicate owned routes deleted, missing or different ones replaced", t => {
  const own = (dst: string, o: Partial<KernelRoute> = {}): KernelRoute => ({
    family: 4,
    dst,
    dev: "mvshim-x",
    src: "198.18.0.11",
    protocol: "77",
    metric: 0,
    type: "unicast",
    ...o,
  });
  const k = kernel(
    [],
    [
      own("198.18.100.5/32"),
      own("198.18.100.7/32"),
      own("198.18.100.8/32", { src: "198.18.0.12" }),
      own("198.18.100.5/32", { metric: 5 }),
    ],
  );
  const d = (dst: string) => ({
    family: 4 as const,
    dst,
    dev: "mvshim-x",
    src: "198.18.0.11",
    subnet: "lan",
  });
  const desired = new Map([
    ["4|198.18.100.5/32", d("198.18.100.5/32")],
    ["4|198.18.100.8/32", d("198.18.100.8/32")],
    ["4|198.18.100.9/32", d("198.18.100.9/32")],
  ]);
  const r = diffRoutes(k, desired, () => "eth0");
  t.deepEqual(
    r.cleanup.map(s => ("dst" in s.action ? [s.action.dst, s.action.op] : [])),
    [
      ["198.18.100.7/32", "deleteRoute"],
      ["198.18.100.5/32", "deleteRoute"],
    ],
  );
  t.deepEqual(
    r.replace.map(s => ("dst" in s.action ? s.action.dst : "")),
    ["198.18.100.8/32", "198.18.100.9/32"],
  );
  t.true(r.replace.every(s => s.group === "parent:eth0"));
});

test("stale shims: only owned shims that are not wanted", t => {
  const owned = link("mvshim-aaaa", { kind: "macvlan", alias: shimAlias("eth9") });
  const kept = link(shimName("eth0"), { kind: "macvlan", alias: shimAlias("eth0") });
  const other = link("mv0", { kind: "macvlan" });
  const steps = staleShims(kernel([owned, kept, other]), new Set([kept.name]));
  t.deepEqual(
    steps.map(s => s.action),
    [{ op: "deleteLink", name: "mvshim-aaaa" }],
  );
  t.deepEqual([...nodeAddresses([v6Parent()])], ["198.18.0.11", "2001:db8::11"]);
});

// ---- the source a ready subnet reports (the NAD's on-link routes for IPv6 pods) ----

test("a ready shim subnet reports its route source; a not-ready one does not", async t => {
  const { plan, summarize } = await import("../../agent/plan");
  const { nodeEntry, sameEntry } = await import("../../agent/status");
  const eth0 = v6Parent();
  const p = plan({
    node: "node-a",
    subnets: [
      sub("lan6", { cidr: "2001:db8:100::/64" }),
      sub("bad6", { cidr: "2001:db8:200::/64", master: "eth9" }),
    ],
    pods: [],
    kernel: kernel([eth0]),
  });
  const r = summarize(p, []);
  t.is(r.lan6.source, "2001:db8::11");
  t.is(r.bad6.source, undefined);
  const now = new Date(0);
  const e = nodeEntry("node-a", r.lan6, now);
  t.is(e.source, "2001:db8::11");
  t.false(sameEntry(e, { ...e, source: "2001:db8::12" }), "a new source is a status write");
});
