// IPv6 end to end on the local cluster (docs/ipv6.md): node → own pod through the shim (ICMPv6
// and TCP), pod ↔ pod across nodes, and an IPv6 podDefaultGateway subnet routing to another
// segment with the pod's own source. Only 2001:db8::/32.
//
// Address plan (LAN6 2001:db8:18::/64: router 2001:db8:18::1, nodes 2001:db8:18::11/12):
//   lan6  2001:db8:18::/64,  pool ::100-::1ff                    (contains the nodes' addresses)
//   far6  2001:db8:100::/64, gateway ::1 on the router           (no node inside: the NAD gives the
//                                                                  pods on-link /128s to the nodes)
//   gw6   2001:db8:200::/64, gateway ::1 on the router, podDefaultGateway
//   far segment behind the router: pmv-far 2001:db8:250::5/64 (router eth1 2001:db8:250::1).
import test from "ava";
import { deploy } from "../../hack/module/deploy";
import {
  Cluster,
  Pod,
  getJson,
  httpServer,
  macvlanSubnet,
  testPod,
  waitFor,
  withCluster,
} from "./helpers";
import { FAR_NETNS, LanFixtures, ROUTER_NETNS, routeGet } from "./helpers/network";

const fx = new LanFixtures();
test.after.always(() => fx.remove());
test.afterEach.always(async t => {
  if (t.passed) return;
  t.log(
    await cluster().kubectlReport([
      ["get", "pods", "-A", "-o", "wide"],
      ["get", "mvs,mvl", "-o", "wide"],
      ["get", "mvs", "-o", "yaml"],
      ["get", "events", "-A", "--sort-by=.lastTimestamp"],
    ]),
  );
});
const cluster = withCluster(test, { nodes: 2 });

const NS = "ipv6";
const NODE1 = "pmv-node-1";
const NODE2 = "pmv-node-2";
const NODE_IP6: Record<string, string> = {
  [NODE1]: "2001:db8:18::11",
  [NODE2]: "2001:db8:18::12",
};
const FAR6_HOST = "2001:db8:250::5";

const macvlanIp = (p: Pod) => p.metadata?.annotations?.["macvlan.dev/ip"] ?? "";
const url = (ip: string, port = 8080) => `http://[${ip}]:${port}/`;

function pod(name: string, node: string, subnet: string) {
  return testPod({
    command: httpServer(8080),
    name,
    namespace: NS,
    node,
    annotations: { "macvlan.dev/subnet": subnet },
  });
}

const pods: Record<string, Pod> = {};

/** Every node's agent has reported the subnet ready with its IPv6 route source. */
async function sourcesReported(c: Cluster, subnet: string): Promise<string[]> {
  return waitFor(
    async () => {
      const nodes: { node: string; ready: boolean; source?: string }[] =
        (await getJson(c, ["mvs", subnet]))?.status?.nodes ?? [];
      const ok = nodes.filter(n => n.ready && n.source);
      return ok.length === 2 && ok.map(n => `${n.node}=${n.source}`);
    },
    { what: `both agents report ${subnet} ready with a source`, timeoutMs: 60_000 },
  );
}

test.serial("setup: three IPv6 subnets, an IPv6 far segment, pods on both nodes", async t => {
  const c = cluster();
  await deploy();
  await c.apply([
    macvlanSubnet("lan6", {
      cidr: "2001:db8:18::/64",
      gateway: "2001:db8:18::1",
      ranges: [{ start: "2001:db8:18::100", end: "2001:db8:18::1ff" }],
    }),
    macvlanSubnet("far6", {
      cidr: "2001:db8:100::/64",
      gateway: "2001:db8:100::1",
      ranges: [{ start: "2001:db8:100::10", end: "2001:db8:100::ff" }],
    }),
    macvlanSubnet("gw6", {
      cidr: "2001:db8:200::/64",
      gateway: "2001:db8:200::1",
      ranges: [{ start: "2001:db8:200::10", end: "2001:db8:200::ff" }],
      podDefaultGateway: true,
    }),
  ]);
  for (const s of ["lan6", "far6", "gw6"])
    t.log(`${s}: ${(await sourcesReported(c, s)).join(", ")}`);
  // The router serves far6 and gw6, and a segment behind it.
  fx.addRouterAddress("2001:db8:100::1/64");
  fx.addRouterAddress("2001:db8:200::1/64");
  fx.addFarSegment();
  await c.execOk(`netns/${ROUTER_NETNS}`, [
    "ip",
    "addr",
    "add",
    "2001:db8:250::1/64",
    "dev",
    "eth1",
    "nodad",
  ]);
  await c.execOk(`netns/${FAR_NETNS}`, [
    "ip",
    "addr",
    "add",
    `${FAR6_HOST}/64`,
    "dev",
    "eth0",
    "nodad",
  ]);
  await c.execOk(`netns/${FAR_NETNS}`, [
    "ip",
    "-6",
    "route",
    "add",
    "default",
    "via",
    "2001:db8:250::1",
  ]);
  // An echo server on the far host that answers with the client's address as it arrives.
  await c.spawnIn(`netns/${FAR_NETNS}`, [
    "/usr/bin/python3",
    "-c",
    [
      "import http.server as h, socket",
      "class S(h.ThreadingHTTPServer): address_family = socket.AF_INET6",
      "class H(h.BaseHTTPRequestHandler):",
      "  def do_GET(s):",
      "    b = s.client_address[0].encode()",
      "    s.send_response(200); s.send_header('Content-Length', str(len(b))); s.end_headers()",
      "    s.wfile.write(b)",
      "  def log_message(s, *a): pass",
      "S(('::', 8081), H).serve_forever()",
    ].join("\n"),
  ]);
  await c.createNamespace(NS, { "macvlan.dev/subnet": "lan6" });
  const objs = [
    pod("lan6-1", NODE1, "lan6"),
    pod("lan6-2", NODE2, "lan6"),
    pod("far6-1", NODE1, "far6"),
    pod("far6-2", NODE2, "far6"),
    pod("gw6-1", NODE1, "gw6"),
  ];
  await c.apply(objs);
  for (const o of objs)
    pods[o.metadata.name] = await c.waitForPodReady(NS, o.metadata.name, { timeoutMs: 120_000 });
  for (const p of Object.values(pods))
    t.log(`${p.metadata.name} on ${p.spec.nodeName}: net1 ${macvlanIp(p)}`);
  t.regex(macvlanIp(pods["lan6-1"]), /^2001:db8:18::1[0-9a-f]{2}$/);
  t.regex(macvlanIp(pods["far6-1"]), /^2001:db8:100::[0-9a-f]+$/);
});

test.serial(
  "the far6 NAD gives pods an on-link /128 to each node; the pod has it on net1",
  async t => {
    const c = cluster();
    const nad = await getJson(c, ["net-attach-def", "-n", NS, "macvlan-far6"]);
    const routes = JSON.parse(nad.spec.config).plugins[0].ipam.routes as {
      dst: string;
      gw?: string;
    }[];
    for (const ip of Object.values(NODE_IP6))
      t.deepEqual(
        routes.find(r => r.dst === `${ip}/128`),
        { dst: `${ip}/128` },
        `on-link route to ${ip}`,
      );
    const r = await routeGet(c, `${NS}/far6-1`, NODE_IP6[NODE1]);
    t.is(r.dev, "net1");
    t.falsy(r.gateway, "the node is on-link, not behind the router");
    // lan6 contains the nodes: its connected /64 is on-link already, no extra route.
    const lan6 = await getJson(c, ["net-attach-def", "-n", NS, "macvlan-lan6"]);
    const lanRoutes = JSON.parse(lan6.spec.config).plugins[0].ipam.routes as { dst: string }[];
    t.false(lanRoutes.some(x => x.dst.endsWith("/128")));
  },
);

test.serial(
  "node → own pod over IPv6 through the shim: ICMPv6 and TCP, in and outside the node's /64",
  async t => {
    const c = cluster();
    for (const name of ["lan6-1", "lan6-2", "far6-1", "far6-2"]) {
      const p = pods[name];
      const node = String(p.spec.nodeName);
      const ip = macvlanIp(p);
      const route = await routeGet(c, `node/${node}`, ip);
      t.regex(route.dev, /^mvshim-/, `${node} routes ${ip} through its shim`);
      t.is(route.prefsrc, NODE_IP6[node], "with the node's own address as source");
      // A pod seconds old may still be resolving its node's address (NDP) or ending DAD: one
      // lost first echo failed a run; three echoes and 5 s for the first answer.
      t.true(
        await c.ping(`node/${node}`, ip, { count: 3, timeoutS: 5 }),
        `${node} pings its pod ${name} (${ip})`,
      );
      const r = await c.httpGet(`node/${node}`, url(ip));
      t.is(r.status, 200, `${node} → ${name} over TCP`);
      t.is(r.body.trim(), "ok");
    }
    // Kubelet probes of the pods went this way too: they are Ready.
    t.true(Object.values(pods).every(p => p.status.phase === "Running"));
  },
);

test.serial("IPv6 pod ↔ pod across nodes, within and across subnets", async t => {
  const c = cluster();
  for (const [from, to] of [
    ["lan6-1", "lan6-2"],
    ["lan6-2", "lan6-1"],
    ["far6-1", "far6-2"],
    ["far6-2", "lan6-1"],
  ]) {
    const ip = macvlanIp(pods[to]);
    t.true(await c.ping(`${NS}/${from}`, ip), `${from} pings ${to} (${ip})`);
    t.is((await c.httpGet(`${NS}/${from}`, url(ip))).status, 200, `${from} → ${to} over TCP`);
  }
  // A node reaches the other node's pods over the LAN (the router or on-link), not its shim.
  const other = macvlanIp(pods["far6-2"]);
  t.is((await c.httpGet(`node/${NODE1}`, url(other))).status, 200, "node 1 → far6-2 on node 2");
});

test.serial(
  "IPv6 podDefaultGateway: egress to another segment via the gateway keeps the pod's address",
  async t => {
    const c = cluster();
    const ip = macvlanIp(pods["gw6-1"]);
    const route = await routeGet(c, `${NS}/gw6-1`, FAR6_HOST);
    t.is(route.dev, "net1");
    t.is(route.gateway, "2001:db8:200::1");
    const seen = await c.httpGet(`${NS}/gw6-1`, url(FAR6_HOST, 8081));
    t.is(seen.status, 200);
    t.is(seen.body, ip, "the far host sees the pod's macvlan address (no SNAT)");
    // Its node still reaches it through the shim.
    t.is((await c.httpGet(`node/${NODE1}`, url(ip))).status, 200);
  },
);

// ---- Dual stack (docs/ipv6.md "Dual stack"): one net1 with an address of each family. ----

const DUAL_NS = "dual";
const LAN4_RANGE = { start: "198.18.120.10", end: "198.18.120.40" };
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const ipsOf = (p: Pod) => macvlanIp(p).split(",");
async function leasesOfPod(c: Cluster, uid: string): Promise<Json[]> {
  const all = (await getJson(c, ["mvl"]))?.items ?? [];
  return all.filter((l: Json) => l.spec.podRef?.uid === uid);
}
const podLeaseCount = async (c: Cluster) =>
  ((await getJson(c, ["mvl"]))?.items ?? []).filter((l: Json) => l.spec.podRef).length;

test.serial(
  "dual stack: by namespace label or pod annotation, a pod gets an IPv4 and an IPv6 address on one net1, each with its lease",
  async t => {
    const c = cluster();
    await c.apply(macvlanSubnet("lan4", { ranges: [LAN4_RANGE] }));
    await c.createNamespace(DUAL_NS, {
      "macvlan.dev/subnet": "lan4",
      "macvlan.dev/subnet-dual": "lan6",
    });
    await c.apply([
      // By the namespace's labels: no annotation.
      testPod({
        command: httpServer(8080),
        name: "dual-1",
        namespace: DUAL_NS,
        node: NODE1,
        labels: { app: "dual" },
      }),
      // By the pod's annotation, IPv6 first, in a namespace that opted in to lan6 only.
      pod("dual-2", NODE2, "lan6,lan4"),
    ]);
    for (const [ns, name] of [
      [DUAL_NS, "dual-1"],
      [NS, "dual-2"],
    ])
      pods[name] = await c.waitForPodReady(ns, name, { timeoutMs: 120_000 });
    for (const name of ["dual-1", "dual-2"]) {
      const p = pods[name];
      const ips = ipsOf(p);
      t.log(`${name} on ${p.spec.nodeName}: net1 ${ips.join(" and ")}`);
      t.is(ips.length, 2, `${name} holds two addresses`);
      const v4 = ips.find(ip => ip.includes("."))!;
      const v6 = ips.find(ip => ip.includes(":"))!;
      t.regex(v4, /^198\.18\.120\.\d+$/);
      t.regex(v6, /^2001:db8:18::1[0-9a-f]{2}$/);
      // Both on the same net1 inside the pod, from one MAC.
      const ns = name === "dual-1" ? DUAL_NS : NS;
      const addr = await c.execOk(`${ns}/${name}`, ["ip", "addr", "show", "net1"]);
      t.true(addr.includes(`${v4}/16`) && addr.includes(`${v6}/64`), addr);
      const leases = await waitFor(
        async () => {
          const l = await leasesOfPod(c, p.metadata.uid ?? "");
          return l.length === 2 && l.every((x: Json) => x.status?.phase === "Bound") && l;
        },
        { what: `both leases of ${name} Bound`, timeoutMs: 60_000 },
      );
      t.deepEqual(leases.map((l: Json) => l.spec.ip).sort(), [v4, v6].sort());
      t.is(new Set(leases.map((l: Json) => l.spec.mac)).size, 1, "one MAC for both");
      t.true(addr.includes(leases[0].spec.mac), "net1 carries the leases' MAC");
      // The node reaches its pod over both families through the shim.
      const node = String(p.spec.nodeName);
      for (const ip of [v4, v6])
        t.true(await c.ping(`node/${node}`, ip, { count: 3, timeoutS: 5 }), `${node} → ${ip}`);
    }
    // Pod ↔ pod across nodes, both families.
    for (const ip of ipsOf(pods["dual-2"]))
      t.true(await c.ping(`${DUAL_NS}/dual-1`, ip), `dual-1 → dual-2 ${ip}`);
  },
);

test.serial("dual stack: an exposed Service gets one EndpointSlice per family", async t => {
  const c = cluster();
  await c.apply({
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: "web", namespace: DUAL_NS, annotations: { "macvlan.dev/expose": "true" } },
    spec: { selector: { app: "dual" }, ports: [{ name: "http", port: 80, targetPort: 8080 }] },
  });
  const [v4, v6] = [
    ipsOf(pods["dual-1"]).find(ip => ip.includes("."))!,
    ipsOf(pods["dual-1"]).find(ip => ip.includes(":"))!,
  ];
  for (const [slice, type, ip] of [
    ["web-macvlan", "IPv4", v4],
    ["web-macvlan-ipv6", "IPv6", v6],
  ]) {
    const s = await waitFor(
      async () => {
        const got = await getJson(c, ["-n", DUAL_NS, "endpointslice", slice]);
        return got?.endpoints?.[0]?.addresses?.[0] === ip && got;
      },
      { what: `${slice} lists ${ip}`, timeoutMs: 60_000 },
    );
    t.is(s.addressType, type);
    t.is(s.endpoints.length, 1);
  }
});

test.serial(
  "dual stack: a denial on either family leases neither; deleting the pod releases both",
  async t => {
    const c = cluster();
    const before = await podLeaseCount(c);
    // The IPv4 address is free, the IPv6 one lies outside lan6's range: refused, nothing leased.
    const r = await c.kubectlResult(["create", "-f", "-"], {
      input: JSON.stringify(
        testPod({
          name: "dual-bad",
          namespace: DUAL_NS,
          annotations: { "macvlan.dev/ip": "198.18.120.39,2001:db8:18::ffff" },
        }),
      ),
    });
    t.not(r.code, 0);
    t.regex(r.stderr, /2001:db8:18::ffff/);
    await new Promise(res => setTimeout(res, 1500));
    t.is(await podLeaseCount(c), before, "the IPv4 lease was taken back");
    t.falsy(
      ((await getJson(c, ["mvl"]))?.items ?? []).find((l: Json) => l.spec.ip === "198.18.120.39"),
      "no lease of the free IPv4 address either",
    );

    const p = pods["dual-2"];
    await c.kubectl(["-n", NS, "delete", "pod", "dual-2", "--wait=true"]);
    const released = await waitFor(
      async () => {
        const all = ((await getJson(c, ["mvl"]))?.items ?? []).filter((l: Json) =>
          ipsOf(p).includes(l.spec.ip),
        );
        const held = all.filter((l: Json) => l.spec.podRef?.uid === p.metadata.uid);
        return held.every((l: Json) => l.status?.phase === "Released") && all;
      },
      { what: "both leases of dual-2 released", timeoutMs: 60_000 },
    );
    t.log(
      `after deletion: ${released.map((l: Json) => `${l.spec.ip} ${l.status?.phase}`).join(", ") || "no lease left"}`,
    );
  },
);
