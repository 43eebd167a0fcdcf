// Node agent kernel reconcile against real network namespaces (no cluster): a bridge netns as
// the LAN (with its router), a node netns with eth0, pod netns with a macvlan net1 on the node's
// eth0. Needs root and netns; skips cleanly otherwise. Every namespace is removed afterwards.
import anyTest, { type ExecutionContext, type TestFn } from "ava";
import { Kernel } from "../../agent/kernel";
import {
  plan,
  shimName,
  summarize,
  type PlanInput,
  type PodLike,
  type SubnetLike,
} from "../../agent/plan";
import { netnsUnavailableSync, sweep, TestLan } from "../../agent/testing/netns";
import type { KernelState } from "../../agent/types";

const test = anyTest as TestFn<{ lan?: TestLan }>;
const PREFIX = "pmvt-ak";
const NODE = "node-a";
const SHIM = shimName("eth0");

// Decided while the file loads, so the tests show up as skipped (with the reason) when they cannot run.
const unavailable = netnsUnavailableSync();
if (unavailable) console.warn(`agent-kernel: netns tests skipped: ${unavailable}`);

test.before(async () => {
  if (!unavailable) await sweep(PREFIX);
});
test.afterEach.always(async t => {
  await t.context.lan?.down();
});

function netnsTest(title: string, fn: (t: ExecutionContext<{ lan?: TestLan }>) => Promise<void>) {
  if (unavailable) test.skip(`${title} (skipped: ${unavailable})`, () => undefined);
  else test.serial(title, fn);
}

const subnet = (name: string, cidr: string, o: Partial<SubnetLike["spec"]> = {}): SubnetLike => ({
  name,
  spec: { master: "eth0", cidr, ...o },
});
const pod = (name: string, ip: string, sn: string): PodLike => ({
  metadata: {
    name,
    namespace: "team-a",
    annotations: { "macvlan.dev/ip": ip, "macvlan.dev/subnet": sn },
  },
  spec: { nodeName: NODE },
  status: { phase: "Running" },
});

async function reconcile(k: Kernel, input: Omit<PlanInput, "node" | "kernel">) {
  const state = await k.observe();
  const p = plan({ node: NODE, kernel: state, ...input });
  const results = await k.apply(p.steps);
  const failed = results.filter(r => r.outcome === "failed");
  return { plan: p, results, failed, status: summarize(p, results) };
}

async function pending(k: Kernel, input: Omit<PlanInput, "node" | "kernel">) {
  return plan({ node: NODE, kernel: await k.observe(), ...input }).steps.map(s => s.action);
}

const routesVia = (s: KernelState, dev: string) =>
  s.routes.filter(r => r.dev === dev).map(r => `${r.dst} src ${r.src} proto ${r.protocol}`);

netnsTest(
  "node outside the pod's subnet: fails before, works after, idempotent, self-healing, clean removal",
  async t => {
    const lan = (t.context.lan = new TestLan("ak1"));
    await lan.up(); // node 198.18.0.11/16, router 198.18.0.1/16 + 198.18.100.1/24
    const podNs = await lan.addPod({
      name: "p1",
      cidr: "198.18.100.5/24",
      gateway: "198.18.100.1",
    });
    await lan.listen(podNs, 8080);
    // Things the agent does not own and must never touch.
    await lan.ipn(lan.node, [
      "link",
      "add",
      "link",
      "eth0",
      "name",
      "mv-foreign",
      "type",
      "macvlan",
      "mode",
      "bridge",
    ]);
    await lan.ipn(lan.node, ["link", "set", "mv-foreign", "alias", "someone else"]);
    await lan.ipn(lan.node, ["route", "add", "198.18.200.0/24", "dev", "eth0", "proto", "static"]);
    await lan.ipn(lan.node, ["route", "add", "198.18.100.99/32", "dev", "eth0", "proto", "static"]);
    const k = new Kernel({ netns: lan.node });
    const foreign = async () => {
      const s = await k.observe();
      return {
        link: s.links.find(l => l.name === "mv-foreign")?.alias,
        routes: s.routes.filter(r => r.protocol === "static").map(r => r.dst),
      };
    };
    const foreignBefore = await foreign();

    t.false(
      await lan.ping(lan.node, "198.18.100.5", 1),
      "plain macvlan: the node cannot reach its own pod",
    );
    t.is(await lan.tcp(lan.node, "198.18.100.5", 8080), undefined);

    const want = {
      subnets: [subnet("lan", "198.18.100.0/24")],
      pods: [pod("p1", "198.18.100.5", "lan")],
    };
    const first = await reconcile(k, want);
    t.deepEqual(first.failed, []);
    t.true(first.status.lan.ready, first.status.lan.message);
    t.is(first.status.lan.shim, SHIM);
    const s1 = await k.observe();
    const shim = s1.links.find(l => l.name === SHIM)!;
    t.like(shim, {
      kind: "macvlan",
      mode: "bridge",
      parent: "eth0",
      alias: "pepr-macvlan:shim:eth0",
      up: true,
    });
    t.deepEqual(
      shim.addresses.filter(a => a.family === 4),
      [],
      "the shim has no IPv4 address",
    );
    t.deepEqual(routesVia(s1, SHIM), ["198.18.100.5/32 src 198.18.0.11 proto 77"]);
    t.deepEqual(s1.sysctls[SHIM], { arpFilter: "1", acceptRa: "0", autoconf: "0" });

    t.true(await lan.ping(lan.node, "198.18.100.5"), "node → own macvlan pod after the shim");
    t.is(await lan.tcp(lan.node, "198.18.100.5", 8080), `hello from ${podNs}`);
    // arp_filter: the router learnt the node's address on eth0, not on the shim (no ARP flux).
    const eth0Mac = (
      JSON.parse(await lan.ipn(lan.node, ["-j", "link", "show", "eth0"])) as { address: string }[]
    )[0].address;
    await lan.ping(lan.lan, "198.18.0.11");
    const neigh = JSON.parse(await lan.ipn(lan.lan, ["-j", "neigh", "show", "198.18.0.11"])) as {
      lladdr?: string;
    }[];
    t.is(neigh[0]?.lladdr, eth0Mac);

    t.deepEqual(await pending(k, want), [], "a second run changes nothing");
    t.deepEqual((await reconcile(k, want)).results, []);
    // A restart is a fresh process reading the same kernel: still nothing to do.
    t.deepEqual(await pending(new Kernel({ netns: lan.node }), want), []);

    // Someone deletes the route by hand: the next reconcile restores it.
    await lan.ipn(lan.node, ["route", "del", "198.18.100.5/32", "dev", SHIM]);
    t.false(await lan.ping(lan.node, "198.18.100.5", 1));
    t.deepEqual(await pending(k, want), [
      { op: "replaceRoute", family: 4, dst: "198.18.100.5/32", dev: SHIM, src: "198.18.0.11" },
    ]);
    await reconcile(k, want);
    t.true(await lan.ping(lan.node, "198.18.100.5"));

    // Someone deletes the shim: it comes back with its route.
    await lan.ipn(lan.node, ["link", "del", SHIM]);
    t.true((await reconcile(k, want)).status.lan.ready);
    t.true(await lan.ping(lan.node, "198.18.100.5"));

    // The pod goes away (from the desired state): its route goes, the shim stays for the subnet.
    const noPod = { subnets: want.subnets, pods: [] };
    const r3 = await reconcile(k, noPod);
    t.deepEqual(
      r3.plan.steps.map(s => s.action.op),
      ["deleteRoute"],
    );
    const s3 = await k.observe();
    t.deepEqual(routesVia(s3, SHIM), []);
    t.truthy(s3.links.find(l => l.name === SHIM));
    t.false(await lan.ping(lan.node, "198.18.100.5", 1));

    // All subnets gone: the shim goes.
    await reconcile(k, { subnets: [], pods: [] });
    t.falsy((await k.observe()).links.find(l => l.name === SHIM));
    t.deepEqual(await pending(k, { subnets: [], pods: [] }), []);

    t.deepEqual(await foreign(), foreignBefore, "foreign link and routes untouched");
    t.deepEqual(foreignBefore, {
      link: "someone else",
      routes: ["198.18.100.99/32", "198.18.200.0/24"],
    });
  },
);

netnsTest("node inside the pod's subnet: the shim answers the pod's ARP for the node", async t => {
  const lan = (t.context.lan = new TestLan("ak2"));
  await lan.up();
  const podNs = await lan.addPod({ name: "p2", cidr: "198.18.0.50/16" });
  await lan.listen(podNs, 8080);
  const k = new Kernel({ netns: lan.node });
  t.false(await lan.ping(lan.node, "198.18.0.50", 1));

  const want = {
    subnets: [subnet("flat", "198.18.0.0/16")],
    pods: [pod("p2", "198.18.0.50", "flat")],
  };
  const r = await reconcile(k, want);
  t.true(r.status.flat.ready, r.status.flat.message);
  t.notRegex(r.status.flat.message, /rp_filter/);
  t.true(await lan.ping(lan.node, "198.18.0.50"));
  t.is(await lan.tcp(lan.node, "198.18.0.50", 8080), `hello from ${podNs}`);
  // The pod reached the node on-link, through the shim's MAC.
  const shimMac = (await k.observe()).links.find(l => l.name === SHIM)!;
  const neigh = JSON.parse(await lan.ipn(podNs, ["-j", "neigh", "show", "198.18.0.11"])) as {
    lladdr?: string;
  }[];
  const shimAddr = (
    JSON.parse(await lan.ipn(lan.node, ["-j", "link", "show", shimMac.name])) as {
      address: string;
    }[]
  )[0].address;
  t.is(neigh[0]?.lladdr, shimAddr);
  t.deepEqual(await pending(k, want), []);
});

netnsTest(
  "strict rp_filter drops replies that come back through the router; loose mode fixes it",
  async t => {
    const lan = (t.context.lan = new TestLan("ak3"));
    await lan.up();
    const podNs = await lan.addPod({
      name: "p3",
      cidr: "198.18.100.5/24",
      gateway: "198.18.100.1",
    });
    // A router that does not redirect (many do not), so replies really come back through it.
    await lan.sysctl(lan.lan, "net/ipv4/conf/all/send_redirects", "0");
    await lan.sysctl(lan.lan, "net/ipv4/conf/br0/send_redirects", "0");
    await lan.sysctl(podNs, "net/ipv4/conf/all/accept_redirects", "0");
    await lan.sysctl(lan.node, "net/ipv4/conf/all/rp_filter", "0");
    await lan.sysctl(lan.node, "net/ipv4/conf/eth0/rp_filter", "1");
    const k = new Kernel({ netns: lan.node });
    const want = {
      subnets: [subnet("lan", "198.18.100.0/24")],
      pods: [pod("p3", "198.18.100.5", "lan")],
    };
    const warn = await reconcile(k, want);
    t.true(warn.status.lan.ready);
    t.regex(warn.status.lan.message, /warning: strict rp_filter on eth0/);
    t.false(
      await lan.ping(lan.node, "198.18.100.5", 1),
      "strict rp_filter drops the reply arriving on eth0",
    );

    const loose = await reconcile(k, { ...want, rpFilter: "loose" });
    t.deepEqual(loose.failed, []);
    t.regex(loose.status.lan.message, /rp_filter on eth0 set to loose/);
    t.is(
      (await lan.exec(lan.node, ["cat", "/proc/sys/net/ipv4/conf/eth0/rp_filter"])).stdout.trim(),
      "2",
    );
    t.true(await lan.ping(lan.node, "198.18.100.5"));
  },
);

netnsTest("a VLAN parent the kernel cannot make fails only its own subnet", async t => {
  const lan = (t.context.lan = new TestLan("ak4"));
  await lan.up();
  await lan.addPod({ name: "p4", cidr: "198.18.100.5/24", gateway: "198.18.100.1" });
  const k = new Kernel({ netns: lan.node });
  const vlanOk =
    (
      await lan.exec(lan.node, [
        "ip",
        "link",
        "add",
        "link",
        "eth0",
        "name",
        "pmvt-vt",
        "type",
        "vlan",
        "id",
        "9",
      ])
    ).code === 0;
  if (vlanOk) {
    await lan.exec(lan.node, ["ip", "link", "del", "pmvt-vt"]);
    t.log("this kernel has 802.1Q: the VLAN parent is created instead");
  }
  const want = {
    subnets: [subnet("lan", "198.18.100.0/24"), subnet("v100", "198.18.101.0/24", { vlan: 100 })],
    pods: [pod("p4", "198.18.100.5", "lan"), pod("x", "198.18.101.5", "v100")],
  };
  const r = await reconcile(k, want);
  t.true(r.status.lan.ready, r.status.lan.message);
  t.true(await lan.ping(lan.node, "198.18.100.5"));
  if (vlanOk) {
    t.true(r.status.v100.ready, r.status.v100.message);
    return;
  }
  t.false(r.status.v100.ready);
  t.is(r.status.v100.shim, undefined);
  t.regex(
    r.status.v100.message,
    /^parent eth0\.100 is missing and could not be created \(VLAN 100 on eth0\): .*Unknown device type.*8021q/,
  );
  t.log(r.status.v100.message);
  // Still failing the same way next time, still not breaking the other subnet.
  const again = await reconcile(k, want);
  t.false(again.status.v100.ready);
  t.true(again.status.lan.ready);
  t.falsy((await k.observe()).links.find(l => l.name === shimName("eth0.100")));
});

netnsTest(
  "IPv6: shim carries the node's address /128 nodad; node reaches pods in and outside its /64",
  async t => {
    const lan = (t.context.lan = new TestLan("ak5"));
    await lan.up({
      nodeCidrs: ["198.18.0.11/16", "2001:db8::11/64"],
      routerCidrs: ["198.18.0.1/16"],
    });
    // In the node's /64.
    const inNs = await lan.addPod({ name: "p6a", cidr: "2001:db8::50/64" });
    // Outside: the pod needs an on-link route to the node (design §4).
    const outNs = await lan.addPod({
      name: "p6b",
      cidr: "2001:db8:100::5/64",
      routes: [["2001:db8::11/128", "dev", "net1"]],
    });
    await lan.listen(outNs, 8080);
    const k = new Kernel({ netns: lan.node });
    t.false(await lan.ping(lan.node, "2001:db8::50", 1));
    t.false(await lan.ping(lan.node, "2001:db8:100::5", 1));

    const want = {
      subnets: [subnet("v6flat", "2001:db8::/64"), subnet("v6", "2001:db8:100::/64")],
      pods: [pod("p6a", "2001:db8::50", "v6flat"), pod("p6b", "2001:db8:100::5", "v6")],
    };
    const r = await reconcile(k, want);
    t.deepEqual(r.failed, []);
    t.true(r.status.v6.ready, r.status.v6.message);
    t.true(r.status.v6flat.ready, r.status.v6flat.message);
    const s = await k.observe();
    const shim = s.links.find(l => l.name === SHIM)!;
    t.deepEqual(
      shim.addresses.map(a => [a.local, a.prefixlen, a.scope, a.nodad, a.noprefixroute]),
      [["2001:db8::11", 128, "global", true, true]],
      "only the node's address, no link-local (addrgenmode none)",
    );
    t.deepEqual(routesVia(s, SHIM).sort(), [
      "2001:db8:100::5/128 src 2001:db8::11 proto 77",
      "2001:db8::50/128 src 2001:db8::11 proto 77",
    ]);
    t.true(await lan.ping(lan.node, "2001:db8::50"), `${inNs} reachable`);
    t.true(await lan.ping(lan.node, "2001:db8:100::5"));
    t.is(await lan.tcp(lan.node, "2001:db8:100::5", 8080), `hello from ${outNs}`);
    t.deepEqual(await pending(k, want), []);
    await reconcile(k, { subnets: [], pods: [] });
    t.falsy((await k.observe()).links.find(l => l.name === SHIM));
  },
);

netnsTest("scale: 250 local pod routes in one reconcile, then an idle pass", async t => {
  const lan = (t.context.lan = new TestLan("ak6"));
  await lan.up();
  const k = new Kernel({ netns: lan.node });
  const pods = Array.from({ length: 250 }, (_, i) => pod(`p${i}`, `198.18.100.${i + 2}`, "lan"));
  const want = { subnets: [subnet("lan", "198.18.100.0/24")], pods };
  const t0 = performance.now();
  const r = await reconcile(k, want);
  const t1 = performance.now();
  t.deepEqual(r.failed, []);
  t.is(r.plan.subnets.lan.routes.length, 250);
  t.deepEqual(await pending(k, want), []);
  const t2 = performance.now();
  t.is(routesVia(await k.observe(), SHIM).length, 250);
  t.log(
    `first reconcile (250 routes): ${Math.round(t1 - t0)} ms; idle pass (observe + plan): ${Math.round(t2 - t1)} ms`,
  );
});
