// LAN conflict detection end to end (docs/ipv6.md, "Conflict probing"): a host that is not ours
// (the LAN host netns on br-lan) takes an address inside a subnet's pool; the agents' background
// ARP / NDP probes find it, the operator records a Conflict lease with its MAC, no pod gets it,
// and it returns to the pool once the host is gone. Prints the probe rate, the detection time and
// what a pod start costs with probing on.
//   probe   198.18.120.0/24, pool .10-.19, foreign host at .13
//   probe6  2001:db8:120::/64, pool ::10-::1f, foreign host at ::17
import test from "ava";
import { deploy } from "../../hack/module/deploy";
import { leaseName } from "../../lib/ipam";
import { getJson, httpServer, macvlanSubnet, testPod, waitFor, withCluster } from "./helpers";
import { Capture, LAN_BRIDGE, LAN_HOST_NETNS, LAN_NETNS, LanFixtures } from "./helpers/network";

const fx = new LanFixtures();
test.after.always(() => fx.remove());
test.afterEach.always(async t => {
  if (t.passed) return;
  t.log(
    await cluster().kubectlReport([
      ["get", "pods", "-A", "-o", "wide"],
      ["get", "mvs,mvl", "-o", "wide"],
      ["get", "mvs", "-o", "yaml"],
      ["-n", "pepr-system", "logs", "-l", "app.kubernetes.io/name=pepr-macvlan-agent", "--tail=40"],
      ["get", "events", "-A", "--sort-by=.lastTimestamp"],
    ]),
  );
});
const cluster = withCluster(test, { nodes: 2 });

const NS = "conflicts";
const FOREIGN4 = "198.18.120.13";
const FOREIGN6 = "2001:db8:120::17";
const HOLD_SECONDS = 6;
// The product's lease names (IPv6 addresses expanded: probe6-2001-0db8-…).
let foreignMac = "";

interface Lease {
  spec: { ip: string; mac: string; node?: string; podRef?: unknown };
  status?: { phase?: string };
}

async function leasesOf(subnet: string): Promise<Lease[]> {
  return ((await getJson(cluster(), ["mvl", "-l", `macvlan.dev/subnet=${subnet}`]))?.items ??
    []) as Lease[];
}

async function conflictLease(subnet: string, ip: string): Promise<Lease | undefined> {
  const l = (await getJson(cluster(), ["mvl", leaseName(subnet, ip)])) as Lease | undefined;
  return l?.status?.phase === "Conflict" ? l : undefined;
}

test.serial("setup: two subnets, agents probing (short hold for the test), a LAN host", async t => {
  const c = cluster();
  await deploy();
  // Shorter timings than the defaults (rate 20/s, recheck 10 s, hold 60 s) so the test is quick.
  await c.kubectl([
    ...["-n", "pepr-system", "set", "env", "daemonset/pepr-macvlan-agent"],
    `AGENT_CONFLICT_HOLD_SECONDS=${HOLD_SECONDS}`,
    "AGENT_PROBE_RECHECK_SECONDS=2",
    "AGENT_PROBE_SWEEP_SECONDS=20",
  ]);
  await c.kubectl([
    "-n",
    "pepr-system",
    "rollout",
    "status",
    "daemonset/pepr-macvlan-agent",
    "--timeout=120s",
  ]);
  await c.apply([
    macvlanSubnet("probe", {
      cidr: "198.18.120.0/24",
      gateway: "198.18.120.1",
      ranges: [{ start: "198.18.120.10", end: "198.18.120.19" }],
      reuseDelaySeconds: 1,
    }),
    macvlanSubnet("probe6", {
      cidr: "2001:db8:120::/64",
      gateway: "2001:db8:120::1",
      ranges: [{ start: "2001:db8:120::10", end: "2001:db8:120::1f" }],
    }),
  ]);
  for (const s of ["probe", "probe6"])
    await waitFor(
      async () =>
        ((await getJson(c, ["mvs", s]))?.status?.nodes ?? []).filter(
          (n: { ready: boolean }) => n.ready,
        ).length === 2,
      { what: `subnet ${s} ready on both nodes`, timeoutMs: 60_000 },
    );
  fx.addLanHost();
  const link = JSON.parse(
    await c.execOk(`netns/${LAN_HOST_NETNS}`, ["ip", "-j", "link", "show", "eth0"]),
  );
  foreignMac = link[0].address;
  t.regex(foreignMac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
});

test.serial(
  "probe rate on the LAN: RFC 5227 ARP probes (sender 0.0.0.0), bounded per agent",
  async t => {
    const c = cluster();
    const cap = await Capture.start(c, `netns/${LAN_NETNS}`, LAN_BRIDGE, ["arp"]);
    // Longer than the sweep interval (20 s here): with no unbound lease the pool is swept once
    // per interval, so a shorter window may fall between two sweeps.
    const seconds = 25;
    await new Promise(r => setTimeout(r, seconds * 1000));
    cap.stop();
    const probes = cap.lines.filter(l =>
      /Request who-has 198\.18\.120\.\d+ tell 0\.0\.0\.0/.test(l),
    );
    const perSecond = probes.length / seconds;
    t.log(
      `ARP probes on br-lan: ${probes.length} in ${seconds} s = ${perSecond.toFixed(1)}/s (2 agents, 10 IPv4 + 16 IPv6 pool addresses)`,
    );
    t.true(probes.length > 0, "the agents probe the pool");
    t.true(perSecond <= 2 * 20 * 1.5, "within the agents' rate limit (20/s each, burst 30)");
  },
);

test.serial(
  "a foreign host inside the pool becomes a Conflict lease with its MAC, and the subnet counts it",
  async t => {
    const c = cluster();
    const t0 = Date.now();
    await c.execOk(`netns/${LAN_HOST_NETNS}`, [
      "ip",
      "addr",
      "add",
      `${FOREIGN4}/24`,
      "dev",
      "eth0",
    ]);
    await c.execOk(`netns/${LAN_HOST_NETNS}`, [
      "ip",
      "addr",
      "add",
      `${FOREIGN6}/64`,
      "dev",
      "eth0",
      "nodad",
    ]);
    const l4 = await waitFor(() => conflictLease("probe", FOREIGN4), {
      what: "Conflict lease for the IPv4 host",
      timeoutMs: 60_000,
    });
    const s4 = (Date.now() - t0) / 1000;
    const l6 = await waitFor(() => conflictLease("probe6", FOREIGN6), {
      what: "Conflict lease for the IPv6 host",
      timeoutMs: 60_000,
    });
    const s6 = (Date.now() - t0) / 1000;
    t.log(
      `foreign host appeared → Conflict lease: IPv4 ${s4.toFixed(1)} s, IPv6 ${s6.toFixed(1)} s`,
    );
    t.is(l4.spec.mac, foreignMac);
    t.is(l6.spec.mac, foreignMac);
    t.truthy(l4.spec.node, "the node whose agent saw it");
    t.falsy(l4.spec.podRef);
    const table = await c.kubectl(["get", "mvl", leaseName("probe", FOREIGN4)]);
    t.regex(table, /198\.18\.120\.13\s+\S+\s+.*Conflict/, "kubectl get mvl shows it");
    t.log(table.trim());
    const status = await waitFor(
      async () => {
        const s = (await getJson(c, ["mvs", "probe"]))?.status;
        return s?.conflicts === 1 && s;
      },
      { what: "status.conflicts of probe is 1", timeoutMs: 30_000 },
    );
    t.is(status.total, "10");
    t.is(Number(status.free) + status.allocated + status.conflicts, 10);
    t.regex(status.conditions[0].message, /1 in use on the LAN by other hosts/);
    const events = await c.kubectl([
      "get",
      "events",
      "-A",
      "--field-selector",
      "reason=AddressConflict",
    ]);
    t.regex(events, /198\.18\.120\.13 answers on the LAN from/);
  },
);

test.serial(
  "no pod ever gets the address while the host answers; pod start costs nothing extra",
  async t => {
    const c = cluster();
    await c.createNamespace(NS, { "macvlan.dev/subnet": "probe" });
    const names = ["p1", "p2", "p3", "p4"];
    const t0 = Date.now();
    await c.apply(
      names.map((name, i) =>
        testPod({
          name,
          namespace: NS,
          node: `pmv-node-${(i % 2) + 1}`,
          command: httpServer(8080),
        }),
      ),
    );
    const ready: number[] = [];
    for (const name of names) {
      await c.waitForPodReady(NS, name, { timeoutMs: 120_000 });
      ready.push((Date.now() - t0) / 1000);
    }
    t.log(`4 pods applied → Ready (probing on): ${ready.map(x => x.toFixed(1)).join(", ")} s`);
    const pods = await c.listPods(NS);
    const ips = pods.map(p => p.metadata?.annotations?.["macvlan.dev/ip"]);
    t.log(`pods' addresses: ${ips.join(", ")}`);
    t.false(ips.includes(FOREIGN4), "no pod has the foreign host's address");
    const at13 = (await leasesOf("probe")).filter(l => l.spec.ip === FOREIGN4);
    t.deepEqual(
      at13.map(l => l.status?.phase),
      ["Conflict"],
      "the only lease there is the Conflict one",
    );
    // A fixed request for it is refused.
    const r = await c.kubectlResult(["apply", "-f", "-"], {
      input: JSON.stringify(
        testPod({ name: "fixed", namespace: NS, annotations: { "macvlan.dev/ip": FOREIGN4 } }),
      ),
    });
    t.not(r.code, 0, "a pod asking for the address by name is denied");
    t.log((r.stderr || r.stdout).trim());
  },
);

test.serial("once the host leaves, the address returns to the pool", async t => {
  const c = cluster();
  const t0 = Date.now();
  await c.execOk(`netns/${LAN_HOST_NETNS}`, ["ip", "addr", "del", `${FOREIGN4}/24`, "dev", "eth0"]);
  await c.execOk(`netns/${LAN_HOST_NETNS}`, ["ip", "addr", "del", `${FOREIGN6}/64`, "dev", "eth0"]);
  await waitFor(async () => !(await getJson(c, ["mvl", leaseName("probe", FOREIGN4)])), {
    what: "the Conflict lease is gone",
    timeoutMs: 90_000,
  });
  t.log(
    `host left → Conflict lease deleted after ${((Date.now() - t0) / 1000).toFixed(1)} s (hold ${HOLD_SECONDS} s)`,
  );
  await waitFor(async () => !(await getJson(c, ["mvl", leaseName("probe6", FOREIGN6)])), {
    what: "the IPv6 Conflict lease is gone",
    timeoutMs: 90_000,
  });
  await waitFor(async () => (await getJson(c, ["mvs", "probe"]))?.status?.conflicts === 0, {
    what: "status.conflicts back to 0",
    timeoutMs: 30_000,
  });
  const at13 = (await leasesOf("probe")).filter(l => l.spec.ip === FOREIGN4);
  t.false(at13.some(l => l.status?.phase === "Conflict"));
  if (at13.length) {
    // A replica's pool took it back already: it is a hand-out candidate again.
    t.log(
      `${FOREIGN4} is leased again by a replica's pool (${at13[0].status?.phase ?? "Reserved"})`,
    );
    t.falsy(at13[0].spec.podRef, "a pool lease, for the next pod");
    return;
  }
  await c.apply(
    testPod({ name: "fixed", namespace: NS, annotations: { "macvlan.dev/ip": FOREIGN4 } }),
  );
  const p = await c.waitForPodReady(NS, "fixed", { timeoutMs: 120_000 });
  t.is(p.metadata?.annotations?.["macvlan.dev/ip"], FOREIGN4, "a pod gets it now");
});
