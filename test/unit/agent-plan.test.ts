// Node agent planner: every rule, without a kernel.
import test from "ava";
import { applySteps } from "../../agent/kernel";
import {
  parentName,
  plan,
  shimAlias,
  shimName,
  summarize,
  type PlanInput,
  type PodLike,
  type SubnetLike,
} from "../../agent/plan";
import { isLivePodOn, resolvePodAddress } from "../../agent/pods";
import type {
  KernelAction,
  KernelAddress,
  KernelLink,
  KernelRoute,
  KernelState,
} from "../../agent/types";

const NODE = "node-a";

let nextIndex = 10;
function link(name: string, o: Partial<KernelLink> = {}): KernelLink {
  return { name, index: nextIndex++, mtu: 1500, up: true, addresses: [], ...o };
}
const v4 = (local: string, prefixlen = 16, o: Partial<KernelAddress> = {}): KernelAddress => ({
  family: 4,
  local,
  prefixlen,
  scope: "global",
  ...o,
});
const v6 = (local: string, prefixlen = 64, o: Partial<KernelAddress> = {}): KernelAddress => ({
  family: 6,
  local,
  prefixlen,
  scope: "global",
  ...o,
});
function route(dst: string, o: Partial<KernelRoute> = {}): KernelRoute {
  const family = dst.includes(":") ? 6 : 4;
  return { family, dst, protocol: "77", metric: family === 6 ? 1024 : 0, type: "unicast", ...o };
}
const OK_SYSCTLS = { arpFilter: "1", acceptRa: "0", autoconf: "0" };

const eth0 = () => link("eth0", { addresses: [v4("198.18.0.11", 16)] });
const SHIM = shimName("eth0");
function shim(parent = "eth0", o: Partial<KernelLink> = {}): KernelLink {
  return link(shimName(parent), {
    kind: "macvlan",
    parent,
    mode: "bridge",
    alias: shimAlias(parent),
    addrGenMode: "none",
    ...o,
  });
}
function kernel(
  links: KernelLink[],
  routes: KernelRoute[] = [],
  sysctls?: KernelState["sysctls"],
): KernelState {
  const sc =
    sysctls ??
    Object.fromEntries(links.filter(l => l.kind === "macvlan").map(l => [l.name, OK_SYSCTLS]));
  return { links, routes, sysctls: sc };
}

const lan: SubnetLike = { name: "lan", spec: { master: "eth0", cidr: "198.18.100.0/24" } };
const flat: SubnetLike = { name: "flat", spec: { master: "eth0", cidr: "198.18.0.0/16" } };

function pod(name: string, ip: string, subnet = "lan", o: Partial<PodLike> = {}): PodLike {
  return {
    metadata: {
      name,
      namespace: "team-a",
      annotations: { "macvlan.dev/ip": ip, "macvlan.dev/subnet": subnet },
    },
    spec: { nodeName: NODE },
    status: { phase: "Running" },
    ...o,
  };
}

const run = (o: Partial<PlanInput>) =>
  plan({ node: NODE, subnets: [lan], pods: [], kernel: kernel([eth0()]), ...o });
const ops = (p: ReturnType<typeof plan>) => p.steps.map(s => s.action);
const opNames = (p: ReturnType<typeof plan>) => p.steps.map(s => s.action.op);

// ---------- names ----------

test("parent is the master, or <master>.<vlan> when vlan > 0", t => {
  t.is(parentName({ master: "eth0" }), "eth0");
  t.is(parentName({ master: "eth0", vlan: 0 }), "eth0");
  t.is(parentName({ master: "eth0", vlan: 100 }), "eth0.100");
});

test("shim names are deterministic, distinct per parent and fit IFNAMSIZ", t => {
  t.is(shimName("eth0"), shimName("eth0"));
  t.not(shimName("eth0"), shimName("eth0.100"));
  for (const p of ["eth0", "enp0s31f6.4094", "x"]) {
    t.regex(shimName(p), /^mvshim-[0-9a-f]{8}$/);
    t.true(shimName(p).length <= 15);
  }
});

// ---------- pods ----------

test("only live pods scheduled on this node count", t => {
  t.true(isLivePodOn(pod("a", "198.18.100.5"), NODE));
  t.false(isLivePodOn(pod("a", "198.18.100.5", "lan", { spec: { nodeName: "other" } }), NODE));
  t.false(isLivePodOn(pod("a", "198.18.100.5", "lan", { spec: {} }), NODE));
  const terminating = pod("a", "198.18.100.5");
  terminating.metadata!.deletionTimestamp = "2025-01-01T00:00:00Z";
  t.false(isLivePodOn(terminating, NODE));
  t.false(isLivePodOn(pod("a", "198.18.100.5", "lan", { status: { phase: "Succeeded" } }), NODE));
  t.false(isLivePodOn(pod("a", "198.18.100.5", "lan", { status: { phase: "Failed" } }), NODE));
  t.true(isLivePodOn(pod("a", "198.18.100.5", "lan", { status: { phase: "Pending" } }), NODE));
});

test("the network-status entry of net1 wins over the annotation", t => {
  const p = pod("a", "198.18.100.5");
  p.metadata!.annotations!["k8s.v1.cni.cncf.io/network-status"] = JSON.stringify([
    { name: "cbr0", interface: "eth0", ips: ["198.19.0.7"], default: true },
    { name: "team-a/macvlan-lan", interface: "net1", ips: ["198.18.100.9"] },
  ]);
  const r = resolvePodAddress(p, [lan]);
  t.deepEqual(r, {
    kind: "address",
    address: { pod: "team-a/a", subnet: "lan", ip: "198.18.100.9", source: "network-status" },
  });
});

test("the Multus selection's ips come next, then a single macvlan.dev/ip", t => {
  const p: PodLike = {
    metadata: {
      name: "b",
      namespace: "team-a",
      annotations: {
        "macvlan.dev/ip": "198.18.100.20,198.18.100.21",
        "k8s.v1.cni.cncf.io/networks": JSON.stringify([
          {
            name: "macvlan-lan",
            namespace: "team-a",
            interface: "net1",
            ips: ["198.18.100.21/24"],
          },
        ]),
      },
    },
    spec: { nodeName: NODE },
  };
  const r = resolvePodAddress(p, [lan]);
  t.is(r.kind, "address");
  if (r.kind === "address") {
    t.is(r.address.ip, "198.18.100.21");
    t.is(r.address.subnet, "lan", "subnet taken from the managed NAD name");
    t.is(r.address.source, "networks");
  }
  const single = resolvePodAddress(pod("c", "198.18.100.30"), [lan]);
  t.like(single, { kind: "address", address: { ip: "198.18.100.30", source: "annotation" } });
});

test("a pool in macvlan.dev/ip alone is not an address yet", t => {
  const r = resolvePodAddress(pod("a", "198.18.100.5, 198.18.100.6"), [lan]);
  t.like(r, { kind: "unresolved", reason: "no macvlan address yet" });
});

test("without a subnet name the subnet whose CIDR holds the address is used", t => {
  const p = pod("a", "198.18.0.50");
  delete p.metadata!.annotations!["macvlan.dev/subnet"];
  t.like(resolvePodAddress(p, [lan, flat]), { kind: "address", address: { subnet: "flat" } });
});

test("an address outside its subnet, or an unknown subnet, is unresolved", t => {
  t.like(resolvePodAddress(pod("a", "198.18.0.50"), [lan]), { kind: "unresolved" });
  t.like(resolvePodAddress(pod("a", "198.18.100.5", "nope"), [lan]), {
    kind: "unresolved",
    reason: "subnet nope not found",
  });
});

test("pods without macvlan annotations and hostNetwork pods are ignored", t => {
  t.like(resolvePodAddress({ metadata: { name: "x", annotations: {} } }, [lan]), {
    kind: "ignored",
  });
  t.like(
    resolvePodAddress(
      pod("a", "198.18.100.5", "lan", { spec: { nodeName: NODE, hostNetwork: true } }),
      [lan],
    ),
    {
      kind: "ignored",
    },
  );
});

test("single-nic pods: the managed network's status entry is found by name, not by net1", t => {
  const p = pod("vm", "198.18.100.40");
  p.metadata!.annotations!["k8s.v1.cni.cncf.io/network-status"] = JSON.stringify([
    { name: "team-a/macvlan-lan", interface: "eth0", ips: ["198.18.100.41"], default: true },
  ]);
  t.like(resolvePodAddress(p, [lan]), { kind: "address", address: { ip: "198.18.100.41" } });
});

test("IPv6 addresses are canonicalised", t => {
  const s6: SubnetLike = { name: "v6", spec: { master: "eth0", cidr: "2001:db8:100::/64" } };
  const r = resolvePodAddress(pod("a", "2001:0db8:0100:0:0:0:0:0005", "v6"), [s6]);
  t.like(r, { kind: "address", address: { ip: "2001:db8:100::5" } });
});

// ---------- shim and routes ----------

test("fresh node: shim on the parent, sysctls, up, then a /32 per local pod with the node's source", t => {
  const p = run({ pods: [pod("a", "198.18.100.5"), pod("b", "198.18.100.6")] });
  t.deepEqual(ops(p), [
    { op: "createShim", name: SHIM, parent: "eth0", alias: "pepr-macvlan:shim:eth0", mtu: 1500 },
    { op: "setSysctl", key: `net/ipv4/conf/${SHIM}/arp_filter`, value: "1" },
    { op: "setSysctl", key: `net/ipv6/conf/${SHIM}/accept_ra`, value: "0" },
    { op: "setSysctl", key: `net/ipv6/conf/${SHIM}/autoconf`, value: "0" },
    { op: "setUp", name: SHIM },
    { op: "replaceRoute", family: 4, dst: "198.18.100.5/32", dev: SHIM, src: "198.18.0.11" },
    { op: "replaceRoute", family: 4, dst: "198.18.100.6/32", dev: SHIM, src: "198.18.0.11" },
  ]);
  t.true(p.steps.filter(s => s.action.op === "setSysctl").every(s => s.optional));
  t.true(p.steps.find(s => s.action.op === "createShim")!.critical);
  t.like(p.subnets.lan, {
    shim: SHIM,
    parent: "eth0",
    src: "198.18.0.11",
    routes: ["198.18.100.5", "198.18.100.6"],
  });
});

test("converged state plans nothing (idempotent)", t => {
  const k = kernel(
    [eth0(), shim()],
    [
      route("198.18.100.5/32", { dev: SHIM, src: "198.18.0.11" }),
      route("198.18.0.0/16", { dev: "eth0", protocol: "kernel" }),
    ],
  );
  t.deepEqual(ops(run({ pods: [pod("a", "198.18.100.5")], kernel: k })), []);
});

test("sysctls can be left alone", t => {
  const p = run({ pods: [], manageSysctls: false });
  t.false(opNames(p).includes("setSysctl"));
});

test("a route with another source or device is replaced", t => {
  const k = kernel([eth0(), shim()], [route("198.18.100.5/32", { dev: SHIM, src: "198.18.0.99" })]);
  t.deepEqual(ops(run({ pods: [pod("a", "198.18.100.5")], kernel: k })), [
    { op: "replaceRoute", family: 4, dst: "198.18.100.5/32", dev: SHIM, src: "198.18.0.11" },
  ]);
});

test("a deleted route is restored", t => {
  const k = kernel([eth0(), shim()], []);
  t.deepEqual(opNames(run({ pods: [pod("a", "198.18.100.5")], kernel: k })), ["replaceRoute"]);
});

test("routes of pods that are gone, terminating or elsewhere are removed", t => {
  const k = kernel([eth0(), shim()], [route("198.18.100.5/32", { dev: SHIM, src: "198.18.0.11" })]);
  const gone = pod("a", "198.18.100.5");
  gone.metadata!.deletionTimestamp = "2025-01-01T00:00:00Z";
  for (const pods of [
    [],
    [gone],
    [pod("a", "198.18.100.5", "lan", { spec: { nodeName: "node-b" } })],
  ]) {
    t.deepEqual(ops(run({ pods, kernel: k })), [
      { op: "deleteRoute", family: 4, dst: "198.18.100.5/32", dev: SHIM, metric: 0 },
    ]);
  }
});

test("routes that are not the agent's are never touched", t => {
  const k = kernel(
    [eth0(), shim(), link("mv-other", { kind: "macvlan", parent: "eth0", mode: "bridge" })],
    [
      route("198.18.100.77/32", { dev: SHIM, protocol: "static" }),
      route("198.18.200.0/24", { dev: "eth0", protocol: "boot" }),
      route("198.18.100.5/32", { dev: SHIM, src: "198.18.0.11" }),
    ],
  );
  t.deepEqual(ops(run({ pods: [pod("a", "198.18.100.5")], kernel: k })), []);
  t.deepEqual(ops(run({ subnets: [], kernel: k })), [
    { op: "deleteRoute", family: 4, dst: "198.18.100.5/32", dev: SHIM, metric: 0 },
    { op: "deleteLink", name: SHIM },
  ]);
});

test("a foreign route to a pod's address is a conflict, not overwritten", t => {
  const k = kernel(
    [eth0(), shim()],
    [route("198.18.100.5/32", { dev: "eth0", protocol: "static" })],
  );
  const p = run({ pods: [pod("a", "198.18.100.5")], kernel: k });
  t.deepEqual(ops(p), []);
  const s = summarize(p, []).lan;
  t.false(s.ready);
  t.regex(s.message, /route 198\.18\.100\.5\/32 \(proto static\) exists and is not the agent's/);
});

test("duplicate or mis-metric owned routes are cleaned up", t => {
  const k = kernel(
    [eth0(), shim()],
    [
      route("198.18.100.5/32", { dev: SHIM, src: "198.18.0.11" }),
      route("198.18.100.5/32", { dev: SHIM, metric: 50 }),
    ],
  );
  t.deepEqual(ops(run({ pods: [pod("a", "198.18.100.5")], kernel: k })), [
    { op: "deleteRoute", family: 4, dst: "198.18.100.5/32", dev: SHIM, metric: 50 },
  ]);
});

test("two pods with one address give one route", t => {
  const p = run({ pods: [pod("a", "198.18.100.5"), pod("a2", "198.18.100.5")] });
  t.is(opNames(p).filter(o => o === "replaceRoute").length, 1);
});

test("a pod holding the node's own address gets no route", t => {
  const p = run({ subnets: [flat], pods: [pod("a", "198.18.0.11", "flat")] });
  t.false(opNames(p).includes("replaceRoute"));
  t.regex(p.subnets.flat.notes.join(), /node's own address/);
});

test("two subnets on one parent share one shim; different parents get their own", t => {
  const v100: SubnetLike = {
    name: "v100",
    spec: { master: "eth0", vlan: 100, cidr: "198.18.101.0/24" },
  };
  const k = kernel([eth0(), link("eth0.100", { kind: "vlan", parent: "eth0", vlanId: 100 })]);
  const p = run({
    subnets: [lan, flat, v100],
    kernel: k,
    pods: [
      pod("a", "198.18.100.5"),
      pod("b", "198.18.0.50", "flat"),
      pod("c", "198.18.101.5", "v100"),
    ],
  });
  t.is(p.subnets.lan.shim, SHIM);
  t.is(p.subnets.flat.shim, SHIM);
  t.is(p.subnets.v100.shim, shimName("eth0.100"));
  t.is(opNames(p).filter(o => o === "createShim").length, 2);
  const routes = ops(p).filter(a => a.op === "replaceRoute");
  t.deepEqual(
    routes.map(a => a.op === "replaceRoute" && [a.dst, a.dev]),
    [
      ["198.18.0.50/32", SHIM],
      ["198.18.100.5/32", SHIM],
      ["198.18.101.5/32", shimName("eth0.100")],
    ],
  );
});

test("shims of subnets that are gone are deleted; foreign macvlans stay", t => {
  const k = kernel([
    eth0(),
    shim(),
    shim("eth0.7", { parent: "eth0.7" }),
    link("macvlan0", { kind: "macvlan", parent: "eth0", mode: "bridge", alias: "someone else" }),
  ]);
  t.deepEqual(ops(run({ subnets: [lan], kernel: k })), [
    { op: "deleteLink", name: shimName("eth0.7") },
  ]);
  const all = ops(run({ subnets: [], kernel: k }));
  t.deepEqual(all, [
    { op: "deleteLink", name: SHIM },
    { op: "deleteLink", name: shimName("eth0.7") },
  ]);
});

test("a link with the shim's name that is not ours is left alone and reported", t => {
  const k = kernel([eth0(), link(SHIM, { kind: "veth" })]);
  const p = run({ kernel: k, pods: [pod("a", "198.18.100.5")] });
  t.deepEqual(ops(p), []);
  t.regex(summarize(p, []).lan.message, /exists and is not the agent's/);
});

test("an unlabelled macvlan with the shim's name on the parent is adopted", t => {
  const k = kernel([eth0(), shim("eth0", { alias: undefined })]);
  const p = run({ kernel: k });
  t.deepEqual(ops(p), [{ op: "setAlias", name: SHIM, alias: "pepr-macvlan:shim:eth0" }]);
});

test("an owned shim in the wrong mode is recreated", t => {
  const k = kernel([eth0(), shim("eth0", { mode: "private" })]);
  t.deepEqual(opNames(run({ kernel: k })).slice(0, 2), ["deleteLink", "createShim"]);
});

test("a down shim is brought up, a wrong MTU fixed, drifted sysctls reset", t => {
  const k = kernel([eth0(), shim("eth0", { up: false, mtu: 9000, addrGenMode: "eui64" })], [], {
    [SHIM]: { arpFilter: "0", acceptRa: "0", autoconf: "0" },
  });
  t.deepEqual(ops(run({ kernel: k })), [
    { op: "setMtu", name: SHIM, mtu: 1500 },
    { op: "setAddrGenModeNone", name: SHIM },
    { op: "setSysctl", key: `net/ipv4/conf/${SHIM}/arp_filter`, value: "1" },
    { op: "setUp", name: SHIM },
  ]);
});

// ---------- parent NIC ----------

test("a missing VLAN parent is created on its master and brought up before the shim", t => {
  const v100: SubnetLike = {
    name: "v100",
    spec: { master: "eth0", vlan: 100, cidr: "198.18.101.0/24", mtu: 1400 },
  };
  const p = run({ subnets: [v100] });
  t.deepEqual(ops(p).slice(0, 3), [
    { op: "createVlan", name: "eth0.100", master: "eth0", vlanId: 100, mtu: 1400 },
    { op: "setUp", name: "eth0.100" },
    {
      op: "createShim",
      name: shimName("eth0.100"),
      parent: "eth0.100",
      alias: "pepr-macvlan:shim:eth0.100",
      mtu: 1400,
    },
  ]);
  t.is(p.subnets.v100.src, "198.18.0.11", "no address on the VLAN: the master's is the source");
});

test("when the VLAN cannot be made the subnet says so and other subnets go on", async t => {
  const v100: SubnetLike = {
    name: "v100",
    spec: { master: "eth0", vlan: 100, cidr: "198.18.101.0/24" },
  };
  const p = run({
    subnets: [lan, v100],
    pods: [pod("a", "198.18.100.5"), pod("c", "198.18.101.5", "v100")],
  });
  const results = await applySteps(p.steps, async (a: KernelAction) => {
    if (a.op === "createVlan")
      throw new Error(
        "ip link add link eth0 name eth0.100 type vlan id 100: Error: Unknown device type.",
      );
  });
  const s = summarize(p, results);
  t.false(s.v100.ready);
  t.is(s.v100.reason, "ParentMissing");
  t.is(s.lan.reason, "ShimReady");
  t.is(s.v100.shim, undefined);
  t.regex(
    s.v100.message,
    /^parent eth0\.100 is missing and could not be created \(VLAN 100 on eth0\): .*Unknown device type.*8021q/,
  );
  t.true(s.lan.ready);
  t.is(s.lan.shim, SHIM);
  // Nothing of the failed group ran after the failure; the other group ran entirely.
  t.true(
    results
      .filter(r => r.step.group === "parent:eth0.100")
      .slice(1)
      .every(r => r.outcome === "skipped"),
  );
  t.true(results.filter(r => r.step.group === "parent:eth0").every(r => r.outcome === "ok"));
});

test("a missing untagged parent or VLAN master is reported, nothing is created", t => {
  const other: SubnetLike = { name: "other", spec: { master: "eth1", cidr: "198.18.102.0/24" } };
  const vOther: SubnetLike = {
    name: "v-other",
    spec: { master: "eth1", vlan: 5, cidr: "198.18.103.0/24" },
  };
  const p = run({ subnets: [lan, other, vOther] });
  const s = summarize(p, []);
  t.regex(s.other.message, /^parent eth1 does not exist on this node/);
  t.is(s.other.reason, "ParentMissing");
  t.regex(s["v-other"].message, /^master eth1 of parent eth1\.5 does not exist/);
  t.false(opNames(p).includes("createVlan"));
  t.true(s.lan.ready);
});

test("parent down → up; parent MTU is raised to the largest subnet MTU, never lowered", t => {
  const jumbo: SubnetLike = { name: "jumbo", spec: { ...lan.spec, mtu: 9000 } };
  const small: SubnetLike = {
    name: "small",
    spec: { master: "eth0", cidr: "198.18.104.0/24", mtu: 1400 },
  };
  const p = run({ subnets: [jumbo, small], kernel: kernel([{ ...eth0(), up: false }]) });
  t.deepEqual(ops(p).slice(0, 3), [
    { op: "setMtu", name: "eth0", mtu: 9000 },
    { op: "setUp", name: "eth0" },
    { op: "createShim", name: SHIM, parent: "eth0", alias: shimAlias("eth0"), mtu: 1400 },
  ]);
  const lower = run({ subnets: [small], kernel: kernel([{ ...eth0(), mtu: 9000 }]) });
  t.false(ops(lower).some(a => a.op === "setMtu" && a.name === "eth0"));
});

test("a VLAN parent with another id is reported", t => {
  const v100: SubnetLike = {
    name: "v100",
    spec: { master: "eth0", vlan: 100, cidr: "198.18.101.0/24" },
  };
  const p = run({
    subnets: [v100],
    kernel: kernel([eth0(), link("eth0.100", { kind: "vlan", vlanId: 200 })]),
  });
  t.deepEqual(ops(p), []);
  t.regex(summarize(p, []).v100.message, /eth0\.100 is VLAN 200, not 100/);
});

test("a parent name longer than 15 characters is reported", t => {
  const s: SubnetLike = {
    name: "long",
    spec: { master: "enp0s31f6abcd", vlan: 4000, cidr: "198.18.101.0/24" },
  };
  t.regex(summarize(run({ subnets: [s] }), []).long.message, /longer than 15/);
});

test("malformed subnets are reported, not planned", t => {
  const bad: SubnetLike = { name: "bad", spec: { master: "eth0", cidr: "nope" } };
  const s = summarize(run({ subnets: [bad, lan] }), []);
  t.false(s.bad.ready);
  t.true(s.lan.ready);
});

// ---------- modes ----------

test("passthru subnets get no shim and keep other subnets off their parent; private gets none", t => {
  const pt: SubnetLike = {
    name: "pt",
    spec: { master: "eth0", cidr: "198.18.105.0/24", mode: "passthru" },
  };
  const pv: SubnetLike = {
    name: "pv",
    spec: { master: "eth0", cidr: "198.18.106.0/24", mode: "private" },
  };
  const onlyPrivate = run({ subnets: [pv], pods: [pod("a", "198.18.106.5", "pv")] });
  t.deepEqual(ops(onlyPrivate), []);
  t.true(summarize(onlyPrivate, []).pv.ready);
  const p = run({ subnets: [pt, lan], pods: [pod("a", "198.18.100.5")] });
  t.deepEqual(ops(p), []);
  const s = summarize(p, []);
  t.true(s.pt.ready);
  t.is(s.pt.reason, "ParentReady");
  t.is(s.lan.reason, "ParentConflict");
  t.false(s.lan.ready);
  t.regex(s.lan.message, /taken by passthru subnet pt/);
});

// ---------- source address ----------

test("the source is the node's address inside the subnet when it has one, else its primary one", t => {
  const multi = link("eth0", {
    addresses: [v4("198.18.0.11", 16), v4("198.18.100.2", 24, { secondary: true })],
  });
  t.is(run({ kernel: kernel([multi]) }).subnets.lan.src, "198.18.100.2");
  const prim = link("eth0", {
    addresses: [v4("198.18.7.7", 24, { secondary: true }), v4("198.18.0.11", 16)],
  });
  t.is(run({ kernel: kernel([prim]) }).subnets.lan.src, "198.18.0.11");
});

test("without an address on the parent, the downward-API node IP is used, else none", t => {
  const bare = link("eth0");
  t.is(
    run({ kernel: kernel([bare]), nodeIPs: ["2001:db8::1", "198.18.0.12"] }).subnets.lan.src,
    "198.18.0.12",
  );
  const p = run({ kernel: kernel([bare]), pods: [pod("a", "198.18.100.5")] });
  t.is(p.subnets.lan.src, undefined);
  t.deepEqual(ops(p).at(-1), {
    op: "replaceRoute",
    family: 4,
    dst: "198.18.100.5/32",
    dev: SHIM,
    src: undefined,
  });
  t.true(summarize(p, []).lan.ready);
});

test("IPv6: the node's address goes on the shim as /128, routes are /128 with that source", t => {
  const s6: SubnetLike = { name: "v6", spec: { master: "eth0", cidr: "2001:db8:100::/64" } };
  const e = link("eth0", {
    addresses: [v4("198.18.0.11"), v6("2001:db8::11"), v6("fe80::1", 64, { scope: "link" })],
  });
  const p = run({ subnets: [s6], kernel: kernel([e]), pods: [pod("a", "2001:db8:100::5", "v6")] });
  t.deepEqual(ops(p).slice(-2), [
    { op: "addAddress", dev: SHIM, family: 6, address: "2001:db8::11", prefixlen: 128 },
    { op: "replaceRoute", family: 6, dst: "2001:db8:100::5/128", dev: SHIM, src: "2001:db8::11" },
  ]);
  // Converged: nothing; a stray global address on the shim is removed.
  const sh = shim("eth0", {
    addresses: [
      v6("2001:db8::11", 128),
      v6("fe80::2", 64, { scope: "link" }),
      v4("198.18.9.9", 32),
    ],
  });
  const k = kernel([e, sh], [route("2001:db8:100::5/128", { dev: SHIM, src: "2001:db8::11" })]);
  t.deepEqual(ops(run({ subnets: [s6], kernel: k, pods: [pod("a", "2001:db8:100::5", "v6")] })), [
    { op: "deleteAddress", dev: SHIM, family: 4, address: "198.18.9.9", prefixlen: 32 },
  ]);
  // The subnet gone: its route and the shim go.
  t.deepEqual(opNames(run({ subnets: [], kernel: k })), ["deleteRoute", "deleteLink"]);
});

test("IPv6 without a node IPv6 address is not ready", t => {
  const s6: SubnetLike = { name: "v6", spec: { master: "eth0", cidr: "2001:db8:100::/64" } };
  const p = run({ subnets: [s6], pods: [pod("a", "2001:db8:100::5", "v6")] });
  t.false(opNames(p).includes("replaceRoute"));
  t.regex(summarize(p, []).v6.message, /no IPv6 address on eth0/);
});

// ---------- summarize ----------

test("ready message names shim, source and route count; optional failures are warnings", async t => {
  const p = run({ pods: [pod("a", "198.18.100.5")] });
  const results = await applySteps(p.steps, async a => {
    if (a.op === "setSysctl") throw new Error("read-only file system");
  });
  const s = summarize(p, results).lan;
  t.true(s.ready);
  t.is(s.shim, SHIM);
  t.regex(
    s.message,
    new RegExp(`^shim ${SHIM} on eth0, source 198\\.18\\.0\\.11; warning: .*read-only`),
  );
});

test("a failed route makes its subnet not ready with the kernel's words", async t => {
  const p = run({ pods: [pod("a", "198.18.100.5")] });
  const results = await applySteps(p.steps, async a => {
    if (a.op === "replaceRoute")
      throw new Error("ip route replace …: Error: Nexthop has invalid gateway.");
  });
  const s = summarize(p, results).lan;
  t.false(s.ready);
  t.is(s.reason, "RouteFailed");
  t.is(s.shim, SHIM);
  t.regex(s.message, /Nexthop has invalid gateway/);
});

// ---------- rp_filter ----------

test("strict rp_filter where the node is outside the pod subnet: warning, or loose on request", t => {
  const k = kernel([eth0()]);
  k.rpFilter = { all: "0", eth0: "1" };
  const warn = run({ kernel: k, pods: [pod("a", "198.18.100.5")] });
  t.false(ops(warn).some(a => a.op === "setSysctl" && a.key.endsWith("/rp_filter")));
  const s = summarize(warn, []).lan;
  t.true(s.ready);
  t.regex(s.message, /warning: strict rp_filter on eth0 .* AGENT_RP_FILTER=loose/);

  const loose = run({ kernel: k, pods: [pod("a", "198.18.100.5")], rpFilter: "loose" });
  const step = loose.steps.find(
    x => x.action.op === "setSysctl" && x.action.key.endsWith("/rp_filter"),
  );
  t.deepEqual(step?.action, { op: "setSysctl", key: "net/ipv4/conf/eth0/rp_filter", value: "2" });
  t.true(step?.optional);

  // "all"=1 counts too (effective value is the maximum); loose (2) or an in-subnet source is fine.
  t.regex(
    summarize(run({ kernel: { ...k, rpFilter: { all: "1", eth0: "0" } } }), []).lan.message,
    /strict rp_filter/,
  );
  t.notRegex(
    summarize(run({ kernel: { ...k, rpFilter: { all: "1", eth0: "2" } } }), []).lan.message,
    /rp_filter/,
  );
  t.notRegex(summarize(run({ kernel: k, subnets: [flat] }), []).flat.message, /rp_filter/);
});

test("the agent reads selections as Multus does: shorthand with spaces counts, a refused one does not", t => {
  const withNetworks = (networks: string): PodLike => ({
    metadata: {
      name: "s",
      namespace: "team-a",
      annotations: { "k8s.v1.cni.cncf.io/networks": networks },
    },
    spec: { nodeName: NODE },
  });
  // Multus trims the parts of `ns/ name @iface`: the managed network is named, no address yet.
  t.like(resolvePodAddress(withNetworks("team-a/ macvlan-lan @net1"), [lan]), {
    kind: "unresolved",
    reason: "no macvlan address yet",
  });
  // A single JSON object is refused by Multus: the pod attaches nothing, so it asks for nothing.
  const single = withNetworks('{"name":"macvlan-lan","ips":["198.18.100.40/24"]}');
  t.like(resolvePodAddress(single, [lan]), { kind: "ignored" });
});
