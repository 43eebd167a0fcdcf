// Dual stack (design.md §2): a pod asks for two subnets of one parent, one per family, by its
// annotation (`lan,lan6`) or its namespace's `macvlan.dev/subnet-dual` label; it gets one address
// of each on one net1 (one MAC, one token, the pair's NAD), each with its own lease, bound,
// released and repaired together; slices and the agent's routes cover both.
import test from "ava";
import { dualPairProblem, planAdmission, podAnnotationsFor } from "../../lib/decide/admit";
import { wantedNads } from "../../lib/decide/nads";
import { claimsOf, leasesOfPod, unleasedClaims } from "../../lib/decide/pods";
import { renderLease } from "../../lib/render/lease";
import { renderNad, renderNadConfig } from "../../lib/render/nad";
import { resolvePodAddresses } from "../../agent/pods";
import { dualNadName, subnetsOfNadName } from "../../lib/names";
import { lease, pod, subnet } from "./helpers/objects";
import { NamespaceInfo } from "../../lib/selection";

const lan = subnet("lan");
const lan6 = subnet("lan6", {
  cidr: "2001:db8:18::/64",
  gateway: "2001:db8:18::1",
  podDefaultGateway: true,
});
const subnets = new Map([
  ["lan", lan],
  ["lan6", lan6],
  ["lan6b", subnet("lan6b", { cidr: "2001:db8:19::/64" })],
  ["far", subnet("far", { cidr: "198.18.101.0/24" })],
  ["vlan6", subnet("vlan6", { cidr: "2001:db8:20::/64", vlan: 20 })],
]);
const team: NamespaceInfo = { name: "team-a", labels: { "macvlan.dev/subnet": "lan" } };

const plan = (annotations: Record<string, string>, info: NamespaceInfo = team) =>
  planAdmission({
    pod: pod("p", annotations),
    namespace: "team-a",
    namespaceInfo: info,
    subnets,
  });

test("the pod's annotation or the namespace's subnet-dual label asks for both families", t => {
  for (const [what, p] of [
    ["annotation", plan({ "macvlan.dev/subnet": "lan,lan6" })],
    [
      "namespace label",
      plan(
        {},
        {
          name: "team-a",
          labels: { "macvlan.dev/subnet": "lan", "macvlan.dev/subnet-dual": "lan6" },
        },
      ),
    ],
  ] as const) {
    t.is(p.kind, "lease", what);
    if (p.kind !== "lease") continue;
    t.is(p.subnet.metadata?.name, "lan", what);
    t.is(p.dual?.subnet.metadata?.name, "lan6", what);
  }
  const single = plan({});
  t.true(single.kind === "lease" && !single.dual, "the opt-in label alone stays single stack");
});

test("fixed addresses go to the subnet of their family", t => {
  const p = plan({
    "macvlan.dev/subnet": "lan6,lan",
    "macvlan.dev/ip": "198.18.100.7, 2001:db8:18::7,2001:db8:18::8",
  });
  t.is(p.kind, "lease");
  if (p.kind !== "lease") return;
  t.deepEqual(p.fixedIps, ["2001:db8:18::7", "2001:db8:18::8"]);
  t.deepEqual(p.dual?.fixedIps, ["198.18.100.7"]);
});

test("a pair that cannot share one net1 is denied, naming why", t => {
  const cases: [string, string, RegExp][] = [
    ["lan,far", "two IPv4", /both are IPv4/],
    ["lan,vlan6", "another parent", /different parents \(eth0, eth0\.20\)/],
    ["lan,nope", "a missing subnet", /"nope".*does not exist/],
    ["lan,lan6,lan6b", "three subnets", /one subnet, or two of different IP families/],
    ["lan,lan", "the same subnet twice", /one subnet, or two/],
    ["lan,", "an empty name", /one subnet, or two/],
  ];
  for (const [names, what, message] of cases) {
    const p = plan({ "macvlan.dev/subnet": names });
    t.is(p.kind, "deny", what);
    if (p.kind === "deny") t.regex(p.message, message, what);
  }
  const closed = { ...team, name: "team-a" };
  const onlyB = new Map(subnets);
  onlyB.set("lan6", subnet("lan6", { cidr: "2001:db8:18::/64", namespaces: ["team-b"] }));
  const denied = planAdmission({
    pod: pod("p", { "macvlan.dev/subnet": "lan,lan6" }),
    namespace: "team-a",
    namespaceInfo: closed,
    subnets: onlyB,
  });
  t.true(denied.kind === "deny" && /may not use MacvlanSubnet "lan6"/.test(denied.message));
  t.regex(
    dualPairProblem(lan, subnet("m", { cidr: "2001:db8:1::/64", mode: "vepa" }))!,
    /modes differ/,
  );
});

test("one net1: the pair's NAD, both addresses, one MAC, both subnets and IPs recorded", t => {
  const p = plan({ "macvlan.dev/subnet": "lan,lan6" });
  if (p.kind !== "lease") return t.fail();
  const nad = dualNadName("lan", "lan6");
  const v4 = renderLease({
    subnet: "lan",
    ip: "198.18.100.7",
    mac: "02:aa:00:00:00:07",
    pod: { namespace: "team-a" },
    fixed: false,
    token: "tok",
    nad,
  });
  const v6 = renderLease({
    subnet: "lan6",
    ip: "2001:db8:18::7",
    mac: "02:aa:00:00:00:07",
    pod: { namespace: "team-a" },
    fixed: false,
    token: "tok",
    nad,
  });
  const ann = podAnnotationsFor(p, v4, "team-a", undefined, v6);
  t.is(ann["macvlan.dev/subnet"], "lan,lan6");
  t.is(ann["macvlan.dev/ip"], "198.18.100.7,2001:db8:18::7");
  t.is(ann["macvlan.dev/mac"], "02:aa:00:00:00:07");
  const [sel] = JSON.parse(ann["k8s.v1.cni.cncf.io/networks"]);
  t.is(sel.name, "macvlan-lan--lan6");
  t.is(sel.interface, "net1");
  t.deepEqual(sel.ips, ["198.18.100.7/24", "2001:db8:18::7/64"]);
  t.deepEqual(sel["default-route"], ["2001:db8:18::1"], "the IPv6 subnet is the pod's gateway");
  t.is(v6.metadata?.annotations?.["macvlan.dev/nad"], nad);
});

test("the pair's NAD: first subnet's parent, both subnets' routes, owned by both", t => {
  const config = JSON.parse(renderNadConfig(lan, lan6));
  t.is(config.name, "macvlan-lan--lan6");
  const macvlan = config.plugins[0];
  t.is(macvlan.master, "eth0");
  const dsts = macvlan.ipam.routes.map((r: { dst: string }) => r.dst);
  t.true(dsts.includes("0.0.0.0/0"), "IPv4 fallback default");
  t.true(dsts.includes("::/1") && dsts.includes("8000::/1"), "IPv6 podDefaultGateway halves");
  const nad = renderNad(lan, "team-a", lan6);
  t.deepEqual(nad.metadata.labels["macvlan.dev/subnet-dual"], "lan6");
  t.deepEqual(
    nad.metadata.ownerReferences.map(o => [o.name, o.controller]),
    [
      ["lan", true],
      ["lan6", false],
    ],
  );
  t.deepEqual(subnetsOfNadName("macvlan-lan--lan6"), ["lan", "lan6"]);
  t.deepEqual(subnetsOfNadName("macvlan-lan"), ["lan"]);
  t.is(subnetsOfNadName("macvlan-a--b--c"), undefined);
});

test("a pod naming the pair's NAD itself is denied like one naming a subnet's NAD", t => {
  for (const info of [team, { name: "plain", labels: {} }]) {
    const p = plan({ "k8s.v1.cni.cncf.io/networks": "team-a/macvlan-lan--lan6" }, info);
    t.is(p.kind, "deny");
    if (p.kind === "deny") t.regex(p.message, /managed network "team-a\/macvlan-lan--lan6"/);
  }
});

const dualAnnotations = {
  "macvlan.dev/subnet": "lan,lan6",
  "macvlan.dev/ip": "198.18.100.7,2001:db8:18::7",
  "macvlan.dev/mac": "02:aa:00:00:00:07",
  "macvlan.dev/reservation": "tok",
};

test("the watcher finds both leases of a dual-stack pod, and what a lost one needs", t => {
  const p = pod("web", dualAnnotations);
  t.deepEqual(
    claimsOf(p).map(c => [c.subnet, c.ip]),
    [
      ["lan", "198.18.100.7"],
      ["lan6", "2001:db8:18::7"],
    ],
  );
  const v4 = lease({ ip: "198.18.100.7", token: "tok" });
  const v6 = lease({ subnet: "lan6", ip: "2001:db8:18::7", token: "tok" });
  const other = lease({ ip: "198.18.100.8", token: "else" });
  t.deepEqual(
    leasesOfPod(p, [v4, v6, other]).map(l => l.spec?.ip),
    ["198.18.100.7", "2001:db8:18::7"],
  );
  t.deepEqual(
    unleasedClaims(p, [v4]).map(c => c.subnet),
    ["lan6"],
    "the lost IPv6 lease",
  );
  t.deepEqual(unleasedClaims(p, [v4, v6]), []);
  const tampered = lease({ subnet: "far", ip: "198.18.101.9", token: "tok" });
  t.deepEqual(unleasedClaims(p, [tampered]), [], "a lease the claims do not name: nothing made");
  t.deepEqual(
    claimsOf(
      pod("x", { "macvlan.dev/subnet": "lan", "macvlan.dev/ip": "198.18.100.7,198.18.100.8" }),
    ),
    [],
  );
});

test("the pair's NAD is wanted where its leases are or the namespace labels ask, by both subnets", t => {
  const v6 = {
    ...lease({ subnet: "lan6", ip: "2001:db8:18::7", namespace: "team-a" }),
  };
  v6.metadata!.annotations = { "macvlan.dev/nad": "macvlan-lan--lan6" };
  const namespaces = [
    { name: "team-b", labels: { "macvlan.dev/subnet": "lan", "macvlan.dev/subnet-dual": "lan6" } },
  ];
  const names = (s: string) =>
    wantedNads(s, [v6], namespaces)
      .map(n => `${n.namespace}/${n.name}`)
      .sort();
  t.deepEqual(names("lan6"), [
    "team-a/macvlan-lan--lan6",
    "team-a/macvlan-lan6",
    "team-b/macvlan-lan--lan6",
  ]);
  t.deepEqual(names("lan"), ["team-b/macvlan-lan", "team-b/macvlan-lan--lan6"]);
});

test("the agent routes both addresses of a dual-stack pod", t => {
  const p = {
    ...pod("web", dualAnnotations),
    metadata: {
      ...pod("web", dualAnnotations).metadata,
      annotations: {
        ...dualAnnotations,
        "k8s.v1.cni.cncf.io/network-status": JSON.stringify([
          {
            name: "team-a/macvlan-lan--lan6",
            interface: "net1",
            ips: ["198.18.100.7", "2001:db8:18::7"],
          },
        ]),
      },
    },
  };
  const known = [
    { name: "lan", spec: lan.spec! },
    { name: "lan6", spec: lan6.spec! },
  ];
  const got = resolvePodAddresses(p, known).map(r =>
    r.kind === "address" ? `${r.address.subnet} ${r.address.ip} ${r.address.source}` : r.kind,
  );
  t.deepEqual(got, ["lan 198.18.100.7 network-status", "lan6 2001:db8:18::7 network-status"]);
});
