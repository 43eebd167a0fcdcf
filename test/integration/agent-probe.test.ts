// The conflict prober against real sockets, without a cluster: two network namespaces on a veth
// pair (198.18.121.0/24, 2001:db8:121::/64), the agent side running pmv-probe through
// HelperProbeRunner exactly as the agent does (AGENT_NETNS), the other side a foreign host.
import test from "ava";
import { execFileSync } from "node:child_process";
import { buildProbeHelper } from "../../agent/probe/build";
import { ConflictProber } from "../../agent/probe/prober";
import { HelperProbeRunner } from "../../agent/probe/runner";
import type { MacvlanSubnet } from "../../crds/types";

const AGENT = "pmvt-probe-a";
const HOST = "pmvt-probe-b";
const ip = (...a: string[]) => execFileSync("ip", a, { encoding: "utf8" });

test.before(() => {
  for (const ns of [AGENT, HOST]) ip("netns", "add", ns);
  ip("-n", AGENT, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", HOST);
  ip("-n", AGENT, "link", "set", "eth0", "up");
  ip("-n", HOST, "link", "set", "eth0", "up");
});
test.after.always(() => {
  for (const ns of [AGENT, HOST]) execFileSync("ip", ["netns", "del", ns], { stdio: "ignore" });
});

const subnet = (name: string, cidr: string, start: string, end: string): MacvlanSubnet => ({
  metadata: { name },
  spec: { master: "eth0", cidr, ranges: [{ start, end }] },
});

test("real ARP and DAD probes find a foreign host in both families; it is dropped once gone", async t => {
  const helper = buildProbeHelper();
  ip("-n", HOST, "addr", "add", "198.18.121.13/24", "dev", "eth0");
  ip("-n", HOST, "addr", "add", "2001:db8:121::13/64", "dev", "eth0", "nodad");
  const mac = JSON.parse(ip("-n", HOST, "-j", "link", "show", "eth0"))[0].address as string;
  const subnets = [
    subnet("v4", "198.18.121.0/24", "198.18.121.10", "198.18.121.20"),
    subnet("v6", "2001:db8:121::/64", "2001:db8:121::10", "2001:db8:121::20"),
  ];
  const ready = { ready: true, reason: "ShimReady" as const, message: "", parent: "eth0" };
  let now = Date.now();
  let changes = 0;
  const prober = new ConflictProber(
    {
      subnets: () => subnets,
      leases: () => [],
      readiness: () => ({ v4: ready, v6: ready }),
      changed: () => changes++,
    },
    {
      runner: new HelperProbeRunner({ helper, netns: AGENT, waitMs: 200 }),
      now: () => now,
      settings: { ratePerSecond: 40, maxBatch: 40, recheckMs: 1000, holdMs: 3000 },
    },
  );
  const t0 = performance.now();
  await prober.tick();
  t.log(
    `one tick (${prober.sent} probes, both families): ${(performance.now() - t0).toFixed(0)} ms`,
  );
  t.deepEqual(
    prober.conflicts("v4").map(c => [c.ip, c.mac]),
    [["198.18.121.13", mac]],
  );
  t.deepEqual(
    prober.conflicts("v6").map(c => [c.ip, c.mac]),
    [["2001:db8:121::13", mac]],
  );
  t.is(changes, 1);
  ip("-n", HOST, "addr", "del", "198.18.121.13/24", "dev", "eth0");
  ip("-n", HOST, "addr", "del", "2001:db8:121::13/64", "dev", "eth0");
  now += 2000;
  await prober.tick();
  t.is(prober.conflicts("v4").length, 1, "held while silent for less than holdMs");
  now += 2000;
  await prober.tick();
  t.deepEqual([prober.conflicts("v4"), prober.conflicts("v6")], [[], []]);
  t.is(changes, 2);
});
