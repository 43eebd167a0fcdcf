import test from "ava";
import fc from "fast-check";

import { MacvlanLease, MacvlanSubnet, MacvlanSubnetSpec } from "../../crds/types";
import { SubnetAllocator, bigIntToIp, ipToBigInt } from "../../lib/ipam";
import {
  SubnetProblem,
  SubnetValidationContext,
  formatProblems,
  validateSubnet,
} from "../../lib/validation/subnet";
import { effectiveParent } from "../../lib/validation/parent";

const subnet = (spec: Partial<MacvlanSubnetSpec> | undefined, name = "lan"): MacvlanSubnet =>
  ({
    apiVersion: "macvlan.dev/v1alpha1",
    kind: "MacvlanSubnet",
    metadata: { name },
    spec: spec === undefined ? undefined : { master: "eth0", cidr: "198.18.100.0/24", ...spec },
  }) as MacvlanSubnet;

const lease = (ip: string, extra: Partial<MacvlanLease> = {}, sub = "lan"): MacvlanLease =>
  ({
    metadata: { name: `${sub}-${ip.replace(/[.:]/g, "-")}` },
    spec: {
      subnet: sub,
      ip,
      mac: "02:00:00:00:00:01",
      podRef: { namespace: "team-a", name: `pod-${ip}` },
    },
    status: { phase: "Bound" },
    ...extra,
  }) as MacvlanLease;

const NONE: SubnetValidationContext = { others: [], leases: [] };

const check = (s: MacvlanSubnet, ctx: Partial<SubnetValidationContext> = {}) =>
  validateSubnet(s, { ...NONE, ...ctx });

/** The problems as "field code" strings, easy to compare. */
const brief = (ps: SubnetProblem[]) => ps.map(p => `${p.field} ${p.code}`);

// ---------------------------------------------------------------------------------------------
// Valid subnets

test("a minimal IPv4 subnet is valid", t => {
  t.deepEqual(check(subnet({})), []);
});

test("a fully specified IPv4 subnet is valid", t => {
  const s = subnet({
    vlan: 100,
    mode: "bridge",
    gateway: "198.18.100.1",
    ranges: [
      { start: "198.18.100.10", end: "198.18.100.99" },
      { start: "198.18.100.150", end: "198.18.100.200" },
    ],
    exclude: ["198.18.100.50", "198.18.100.64/28"],
    routes: [{ dst: "198.18.200.0/24", gw: "198.18.100.254" }, { dst: "198.18.201.0/24" }],
    podDefaultGateway: true,
    namespaces: ["team-a", "team-b"],
    namespaceSelector: {
      matchLabels: { team: "a" },
      matchExpressions: [
        { key: "env", operator: "In", values: ["prod"] },
        { key: "legacy", operator: "DoesNotExist" },
      ],
    },
    reuseDelaySeconds: 0,
    mtu: 9000,
  });
  t.deepEqual(check(s), []);
});

test("an IPv6 subnet is valid, and the gateway may lie inside a range", t => {
  const s = subnet({
    cidr: "2001:db8:100::/64",
    gateway: "2001:db8:100::1",
    ranges: [{ start: "2001:db8:100::1", end: "2001:db8:100::ffff" }],
    exclude: ["2001:db8:100::8/125"],
    routes: [{ dst: "2001:db8:200::/48", gw: "2001:db8:100::fe" }],
    mtu: 1500,
  });
  t.deepEqual(check(s), []);
});

test("IPv4 /31 and /32 subnets have usable addresses", t => {
  t.deepEqual(check(subnet({ cidr: "198.18.100.0/31" })), []);
  t.deepEqual(check(subnet({ cidr: "198.18.100.7/32" })), []);
});

// ---------------------------------------------------------------------------------------------
// Required fields, name, link settings

test("spec, master and cidr are required", t => {
  t.deepEqual(brief(check(subnet(undefined))), ["spec required"]);
  const s = subnet({});
  s.spec = {} as MacvlanSubnetSpec;
  t.deepEqual(brief(check(s)), ["spec.master required", "spec.cidr required"]);
});

test("the subnet name must fit in a label value", t => {
  t.deepEqual(brief(check(subnet({}, "a".repeat(64)))), ["metadata.name name-too-long"]);
  t.deepEqual(check(subnet({}, "a".repeat(63))), []);
});

test("a new subnet's name makes a NAD name Multus takes, never read as a dual-stack pair", t => {
  t.deepEqual(brief(check(subnet({}, "lan.lan6"))), ["metadata.name name-not-nad-safe"]);
  t.deepEqual(brief(check(subnet({}, "lan--lan6"))), ["metadata.name name-not-nad-safe"]);
  t.deepEqual(check(subnet({}, "lan-6")), []);
  const old = subnet({}, "lan.v1");
  t.deepEqual(
    check(subnet({ reuseDelaySeconds: 5 }, "lan.v1"), { old }),
    [],
    "an existing one keeps it",
  );
});

test("master must be a Linux interface name", t => {
  for (const master of ["eth/0", "eth0:1", "eth 0", "eth\t0", ".", "..", "abcdefghijklmnop"]) {
    const ps = check(subnet({ master }));
    t.deepEqual(brief(ps), ["spec.master master-invalid"], master);
    t.regex(ps[0].message, /not a valid Linux interface name: use 1 to 15 characters/);
  }
  for (const master of ["eth0", "enp0s31f6", "bond0.100", "abcdefghijklmno", "br-lan", "..."]) {
    t.deepEqual(check(subnet({ master })), [], master);
  }
});

test("vlan must be 0-4094", t => {
  for (const vlan of [-1, 4095, 1.5, "7" as unknown as number]) {
    const ps = check(subnet({ vlan }));
    t.deepEqual(brief(ps), ["spec.vlan vlan-out-of-range"], String(vlan));
    t.regex(ps[0].message, /use an integer from 1 to 4094, or 0 for untagged/);
  }
  for (const vlan of [0, 1, 4094]) t.deepEqual(check(subnet({ vlan })), []);
});

test("with a VLAN, <master>.<vlan> must fit in 15 characters", t => {
  const ps = check(subnet({ master: "enp0s31f6abcd", vlan: 100 }));
  t.deepEqual(brief(ps), ["spec.master vlan-parent-too-long"]);
  t.regex(ps[0].message, /enp0s31f6abcd\.100.*at most 11 characters/);
  t.deepEqual(check(subnet({ master: "enp0s31f6ab", vlan: 100 })), []);
  t.deepEqual(check(subnet({ master: "enp0s31f6abcd", vlan: 0 })), []);
});

test("mode must be one of the macvlan modes", t => {
  const ps = check(subnet({ mode: "bridged" as "bridge" }));
  t.deepEqual(brief(ps), ["spec.mode mode-invalid"]);
  t.regex(ps[0].message, /use one of bridge, private, vepa, passthru/);
  for (const mode of ["bridge", "private", "vepa", "passthru"] as const)
    t.deepEqual(check(subnet({ mode })), []);
});

test("mtu must be 68-65535, and at least 1280 for IPv6", t => {
  t.deepEqual(brief(check(subnet({ mtu: 67 }))), ["spec.mtu mtu-out-of-range"]);
  t.deepEqual(brief(check(subnet({ mtu: 65536 }))), ["spec.mtu mtu-out-of-range"]);
  t.deepEqual(check(subnet({ mtu: 68 })), []);
  t.deepEqual(brief(check(subnet({ cidr: "2001:db8::/64", mtu: 1279 }))), [
    "spec.mtu mtu-out-of-range",
  ]);
  t.deepEqual(check(subnet({ cidr: "2001:db8::/64", mtu: 1280 })), []);
});

test("reuseDelaySeconds must be a whole number, 0 or more", t => {
  t.deepEqual(brief(check(subnet({ reuseDelaySeconds: -1 }))), [
    "spec.reuseDelaySeconds reuse-delay-invalid",
  ]);
  t.deepEqual(brief(check(subnet({ reuseDelaySeconds: 2.5 }))), [
    "spec.reuseDelaySeconds reuse-delay-invalid",
  ]);
});

// ---------------------------------------------------------------------------------------------
// CIDR

test("a malformed CIDR is rejected with an example", t => {
  for (const cidr of [
    "198.18.100.0",
    "198.18.100.0/33",
    "198.18.100.0/24/1",
    "300.18.100.0/24",
    "010.18.100.0/24",
    "198.18.100.0/024",
    "2001:db8::/129",
    "fe80::%eth0/64",
    "lan",
  ]) {
    const ps = check(subnet({ cidr }));
    t.deepEqual(brief(ps), ["spec.cidr cidr-malformed"], cidr);
    t.regex(
      ps[0].message,
      /is not a network in CIDR notation: write it like 198\.18\.100\.0\/24/,
      cidr,
    );
  }
  const mapped = check(subnet({ cidr: "::ffff:198.18.100.0/120" }));
  t.regex(mapped[0].message, /IPv4-mapped IPv6 addresses are not allowed/);
});

test("a CIDR with host bits set names the network to use", t => {
  const v4 = check(subnet({ cidr: "198.18.100.5/24" }));
  t.deepEqual(brief(v4), ["spec.cidr cidr-host-bits"]);
  t.is(v4[0].message, "198.18.100.5/24 has host bits set: use the network address 198.18.100.0/24");
  const v6 = check(subnet({ cidr: "2001:db8:100::1/64" }));
  t.regex(v6[0].message, /use the network address 2001:db8:100::\/64$/);
});

// ---------------------------------------------------------------------------------------------
// Gateway

test("the gateway must be an address inside the CIDR, not its network or broadcast address", t => {
  const cases: [string, string, RegExp][] = [
    ["198.18.101.1", "gateway-outside", /outside spec\.cidr 198\.18\.100\.0\/24/],
    ["2001:db8::1", "gateway-outside", /is IPv6 but spec\.cidr 198\.18\.100\.0\/24 is IPv4/],
    ["198.18.100", "gateway-malformed", /is not an IP address/],
    [
      "198.18.100.0",
      "gateway-reserved",
      /the network address of 198\.18\.100\.0\/24: use the router's own address, e\.g\. 198\.18\.100\.1/,
    ],
    ["198.18.100.255", "gateway-reserved", /the broadcast address/],
  ];
  for (const [gateway, code, message] of cases) {
    const ps = check(subnet({ gateway }));
    t.deepEqual(brief(ps), [`spec.gateway ${code}`], gateway);
    t.regex(ps[0].message, message, gateway);
  }
  const anycast = check(subnet({ cidr: "2001:db8:100::/64", gateway: "2001:db8:100::" }));
  t.deepEqual(brief(anycast), ["spec.gateway gateway-reserved"]);
  t.regex(anycast[0].message, /subnet-router anycast address.*2001:db8:100::1/);
  const rfc2526 = check(
    subnet({ cidr: "2001:db8:100::/64", gateway: "2001:db8:100::fdff:ffff:ffff:fffe" }),
  );
  t.deepEqual(brief(rfc2526), ["spec.gateway gateway-reserved"]);
  t.regex(rfc2526[0].message, /reserved subnet anycast address \(RFC 2526/);
  t.deepEqual(check(subnet({ cidr: "2001:db8:100::/64", gateway: "2001:db8:100::1" })), []);
  t.deepEqual(check(subnet({ cidr: "198.18.100.0/31", gateway: "198.18.100.0" })), []);
});

test("podDefaultGateway needs a gateway", t => {
  const ps = check(subnet({ podDefaultGateway: true }));
  t.deepEqual(brief(ps), ["spec.podDefaultGateway default-gateway-missing"]);
  t.regex(ps[0].message, /requires spec\.gateway/);
  t.deepEqual(check(subnet({ podDefaultGateway: false })), []);
});

// ---------------------------------------------------------------------------------------------
// Ranges and exclusions

test("ranges must be inside the CIDR, ordered, one family, and not overlap", t => {
  const ps = check(
    subnet({
      ranges: [
        { start: "198.18.100.10", end: "198.18.100.20" },
        { start: "198.18.99.250", end: "198.18.100.5" },
        { start: "198.18.100.90", end: "198.18.100.80" },
        { start: "198.18.100.x", end: "198.18.100.30" },
        { start: "2001:db8::1", end: "2001:db8::9" },
        { start: "198.18.100.15", end: "198.18.100.25" },
      ],
    }),
  );
  t.deepEqual(brief(ps), [
    "spec.ranges[1].start range-outside",
    "spec.ranges[2] range-order",
    "spec.ranges[3].start range-malformed",
    "spec.ranges[4].start range-outside",
    "spec.ranges[4].end range-outside",
    "spec.ranges[5] range-overlap",
  ]);
  t.regex(ps[0].message, /198\.18\.99\.250 is outside spec\.cidr 198\.18\.100\.0\/24/);
  t.is(ps[1].message, "start 198.18.100.90 is after end 198.18.100.80: swap them");
  t.regex(ps[3].message, /2001:db8::1 is IPv6 but spec\.cidr 198\.18\.100\.0\/24 is IPv4/);
  t.regex(ps[5].message, /overlaps spec\.ranges\[0\]: merge them/);
});

test("with a malformed CIDR, a range still must not mix families", t => {
  const ps = check(
    subnet({ cidr: "bad", ranges: [{ start: "198.18.100.1", end: "2001:db8::1" }] }),
  );
  t.deepEqual(brief(ps), ["spec.cidr cidr-malformed", "spec.ranges[0] range-outside"]);
});

test("exclusions must be IPs or CIDRs inside the CIDR", t => {
  const ps = check(
    subnet({
      exclude: [
        "198.18.100.7",
        "198.18.100.16/28",
        "198.18.100.300",
        "198.18.100.5/28",
        "198.18.0.0/16",
        "198.18.101.1",
        "2001:db8::1",
      ],
    }),
  );
  t.deepEqual(brief(ps), [
    "spec.exclude[2] exclude-malformed",
    "spec.exclude[3] exclude-malformed",
    "spec.exclude[4] exclude-outside",
    "spec.exclude[5] exclude-outside",
    "spec.exclude[6] exclude-outside",
  ]);
  t.regex(ps[0].message, /neither an IP address nor a CIDR/);
  t.regex(ps[1].message, /198\.18\.100\.5\/28 has host bits set: use 198\.18\.100\.0\/28/);
  t.regex(ps[2].message, /198\.18\.0\.0\/16 is not inside spec\.cidr 198\.18\.100\.0\/24/);
});

test("a pool with no usable address is rejected", t => {
  const ps = check(
    subnet({
      ranges: [{ start: "198.18.100.10", end: "198.18.100.11" }],
      exclude: ["198.18.100.10/31"],
    }),
  );
  t.deepEqual(brief(ps), ["spec.ranges pool-empty"]);
  const gwOnly = check(subnet({ cidr: "198.18.100.1/32", gateway: "198.18.100.1" }));
  t.deepEqual(brief(gwOnly), ["spec.cidr pool-empty"]);
  // The network and broadcast addresses are not usable either.
  t.deepEqual(brief(check(subnet({ ranges: [{ start: "198.18.100.0", end: "198.18.100.0" }] }))), [
    "spec.ranges pool-empty",
  ]);
});

// ---------------------------------------------------------------------------------------------
// Routes

test("routes need a CIDR dst of the subnet's family and a gw inside the CIDR", t => {
  const ps = check(
    subnet({
      routes: [
        { dst: "198.18.200.1" },
        { dst: "198.18.200.1/24" },
        { dst: "2001:db8::/32" },
        { dst: "198.18.200.0/24", gw: "198.18.101.1" },
        { dst: "198.18.201.0/24", gw: "gw" },
        { dst: "198.18.202.0/24", gw: "198.18.100.255" },
        { dst: "198.18.203.0/24", gw: "198.18.100.254" },
      ],
    }),
  );
  t.deepEqual(brief(ps), [
    "spec.routes[0].dst route-malformed",
    "spec.routes[1].dst route-malformed",
    "spec.routes[2].dst route-outside",
    "spec.routes[3].gw route-outside",
    "spec.routes[4].gw route-malformed",
    "spec.routes[5].gw route-outside",
  ]);
  t.regex(ps[0].message, /write 198\.18\.200\.1\/32 for a single host/);
  t.regex(ps[1].message, /use 198\.18\.200\.0\/24/);
  t.regex(ps[3].message, /outside spec\.cidr/);
  t.regex(ps[5].message, /broadcast address/);
});

test("a default route conflicts with podDefaultGateway", t => {
  const ps = check(
    subnet({ gateway: "198.18.100.1", podDefaultGateway: true, routes: [{ dst: "0.0.0.0/0" }] }),
  );
  t.deepEqual(brief(ps), ["spec.routes[0].dst route-conflict"]);
  t.deepEqual(check(subnet({ gateway: "198.18.100.1", routes: [{ dst: "0.0.0.0/0" }] })), []);
});

// ---------------------------------------------------------------------------------------------
// Who may use it

test("namespaces must be DNS labels, listed once", t => {
  const ps = check(subnet({ namespaces: ["team-a", "Team_B", "-x", "a".repeat(64), "team-a"] }));
  t.deepEqual(brief(ps), [
    "spec.namespaces[1] namespace-invalid",
    "spec.namespaces[2] namespace-invalid",
    "spec.namespaces[3] namespace-invalid",
    "spec.namespaces[4] namespace-invalid",
  ]);
  t.regex(ps[0].message, /not a namespace name: use a DNS label/);
  t.regex(ps[3].message, /listed twice/);
});

test("namespaceSelector requirements follow the label-selector rules", t => {
  const ps = check(
    subnet({
      namespaceSelector: {
        matchExpressions: [
          { key: "a", operator: "In" },
          { key: "b", operator: "Exists", values: ["x"] },
          { key: "c", operator: "Like" as "In", values: ["x"] },
          { key: "", operator: "NotIn", values: ["x"] },
        ],
      },
    }),
  );
  t.deepEqual(brief(ps), [
    "spec.namespaceSelector.matchExpressions[0].values selector-invalid",
    "spec.namespaceSelector.matchExpressions[1].values selector-invalid",
    "spec.namespaceSelector.matchExpressions[2].operator selector-invalid",
    "spec.namespaceSelector.matchExpressions[3].key selector-invalid",
  ]);
});

// ---------------------------------------------------------------------------------------------
// Other subnets

test("a CIDR overlapping another subnet on the same master and VLAN is rejected", t => {
  const other = subnet({ cidr: "198.18.100.128/25" }, "lan-b");
  const ps = check(subnet({}), { others: [other] });
  t.deepEqual(brief(ps), ["spec.cidr cidr-overlap"]);
  t.regex(
    ps[0].message,
    /overlaps MacvlanSubnet "lan-b" \(198\.18\.100\.128\/25\) on parent device eth0:/,
  );
  const tagged = check(subnet({ vlan: 7 }), {
    others: [subnet({ vlan: 7, cidr: "198.18.100.0/24" }, "lan-b")],
  });
  t.regex(tagged[0].message, /on parent device eth0\.7:/);
});

test("overlap is by effective parent device: eth0 with vlan 100 is eth0.100", t => {
  const tagged = subnet({ master: "eth0", vlan: 100 }, "tagged");
  const spelled = subnet({ master: "eth0.100", vlan: 0, cidr: "198.18.100.128/25" }, "spelled");
  const ps = check(spelled, { others: [tagged] });
  t.deepEqual(brief(ps), ["spec.cidr cidr-overlap"]);
  t.regex(
    ps[0].message,
    /overlaps MacvlanSubnet "tagged" \(198\.18\.100\.0\/24\) on parent device eth0\.100 \(it names master eth0, vlan 100\)/,
  );
  t.deepEqual(brief(check(tagged, { others: [spelled] })), ["spec.cidr cidr-overlap"]);
  const noVlan = subnet({ master: "eth0.100", cidr: "198.18.100.0/24" }, "no-vlan");
  t.deepEqual(brief(check(noVlan, { others: [tagged] })), ["spec.cidr cidr-overlap"]);
  // eth0 (untagged) and eth0.100 (VLAN 100) are different segments: no overlap.
  const untagged = subnet({ master: "eth0" }, "untagged");
  t.deepEqual(check(untagged, { others: [spelled, tagged] }), []);
  t.deepEqual(check(spelled, { others: [untagged] }), []);
  // A VLAN on a VLAN interface is another segment again.
  t.deepEqual(check(subnet({ master: "eth0.100", vlan: 5 }, "qinq"), { others: [tagged] }), []);
});

test("effectiveParent names the device a subnet's macvlan interfaces hang off", t => {
  t.is(effectiveParent({ master: "eth0" }), "eth0");
  t.is(effectiveParent({ master: "eth0", vlan: 0 }), "eth0");
  t.is(effectiveParent({ master: "eth0", vlan: 100 }), "eth0.100");
  t.is(effectiveParent({ master: "eth0.100", vlan: 0 }), "eth0.100");
  t.is(effectiveParent({ master: "bond0.7", vlan: 30 }), "bond0.7.30");
  t.is(effectiveParent({ master: "" }), undefined);
  t.is(effectiveParent({ vlan: 3 }), undefined);
});

test("overlap is fine on another master or VLAN, and a subnet never overlaps itself", t => {
  t.deepEqual(check(subnet({}), { others: [subnet({ master: "eth1" }, "b")] }), []);
  t.deepEqual(check(subnet({}), { others: [subnet({ vlan: 5 }, "b")] }), []);
  t.deepEqual(
    check(subnet({ vlan: 0 }), { others: [subnet({}, "b")] }).length,
    1,
    "vlan 0 and no vlan are one segment",
  );
  t.deepEqual(check(subnet({}), { others: [subnet({}, "lan")] }), []);
  t.deepEqual(check(subnet({}), { others: [subnet({ cidr: "198.18.101.0/24" }, "b")] }), []);
  t.deepEqual(check(subnet({}), { others: [subnet({ cidr: "2001:db8::/64" }, "b")] }), []);
});

test("one LAN may be split into subnets with the same CIDR and disjoint pools", t => {
  const a = subnet({ ranges: [{ start: "198.18.100.10", end: "198.18.100.99" }] }, "team-a");
  const b = subnet({ ranges: [{ start: "198.18.100.100", end: "198.18.100.199" }] }, "team-b");
  t.deepEqual(check(b, { others: [a] }), []);
  const c = subnet({ ranges: [{ start: "198.18.100.90", end: "198.18.100.120" }] }, "team-c");
  t.deepEqual(brief(check(c, { others: [a, b] })), [
    "spec.cidr cidr-overlap",
    "spec.cidr cidr-overlap",
  ]);
  t.deepEqual(brief(check(subnet({}, "all"), { others: [a] })), ["spec.cidr cidr-overlap"]);
});

// ---------------------------------------------------------------------------------------------
// Updates with leases

test("cidr, master and vlan cannot change while the subnet has leases", t => {
  const old = subnet({ gateway: "198.18.100.1" });
  const leases = ["198.18.100.7", "198.18.100.8"].map(ip => lease(ip));
  const cases: [Partial<MacvlanSubnetSpec>, string][] = [
    [{ cidr: "198.18.100.0/23" }, "spec.cidr"],
    [{ master: "eth1" }, "spec.master"],
    [{ vlan: 9 }, "spec.vlan"],
  ];
  for (const [change, field] of cases) {
    const ps = check(subnet({ gateway: "198.18.100.1", ...change }), { old, leases });
    t.deepEqual(brief(ps), [`${field} immutable-while-leased`], field);
    t.regex(
      ps[0].message,
      /cannot change while the subnet has 2 leases: 198\.18\.100\.7 \(team-a\/pod-198\.18\.100\.7\), 198\.18\.100\.8/,
    );
  }
  // Without leases they may change.
  t.deepEqual(
    check(subnet({ cidr: "198.18.100.0/23", gateway: "198.18.100.1" }), { old, leases: [] }),
    [],
  );
  // A Released lease still counts (its address is held until reuseDelaySeconds has passed).
  const released = lease("198.18.100.7", { status: { phase: "Released" } });
  t.is(check(subnet({ master: "eth1" }), { old, leases: [released] }).length, 1);
});

test("equivalent spellings are not a change", t => {
  const old = subnet({ cidr: "2001:db8:100::/64" });
  const now = subnet({ cidr: "2001:db8:100:0::/64", vlan: 0 });
  t.deepEqual(check(now, { old, leases: [lease("2001:db8:100::7")] }), []);
});

test("shrinking ranges that strands leases names them and their count", t => {
  const old = subnet({ ranges: [{ start: "198.18.100.10", end: "198.18.100.100" }] });
  const leases = ["198.18.100.10", "198.18.100.11", "198.18.100.50"].map(ip => lease(ip));
  const ps = check(subnet({ ranges: [{ start: "198.18.100.20", end: "198.18.100.100" }] }), {
    old,
    leases,
  });
  t.deepEqual(brief(ps), ["spec.ranges strands-leases"]);
  t.regex(
    ps[0].message,
    /would strand 2 leases: 198\.18\.100\.10 \(team-a\/pod-198\.18\.100\.10\), 198\.18\.100\.11 .*keep leased addresses inside spec\.ranges/,
  );
});

test("many stranded leases are summarised", t => {
  const old = subnet({});
  const leases = Array.from({ length: 12 }, (_, i) => lease(`198.18.100.${10 + i}`));
  const ps = check(subnet({ ranges: [{ start: "198.18.100.100", end: "198.18.100.200" }] }), {
    old,
    leases,
  });
  t.regex(ps[0].message, /would strand 12 leases: .*198\.18\.100\.14 \([^)]*\) and 7 more/);
  t.notRegex(ps[0].message, /198\.18\.100\.15/);
});

test("an exclusion or gateway over a leased address is rejected on that field", t => {
  const old = subnet({});
  const leases = [lease("198.18.100.7"), lease("198.18.100.20")];
  const ex = check(subnet({ exclude: ["198.18.100.100", "198.18.100.0/28"] }), { old, leases });
  t.deepEqual(brief(ex), ["spec.exclude[1] strands-leases"]);
  t.regex(ex[0].message, /1 lease: 198\.18\.100\.7 .*do not exclude leased addresses/);
  const gw = check(subnet({ gateway: "198.18.100.20" }), { old, leases });
  t.deepEqual(brief(gw), ["spec.gateway strands-leases"]);
});

test("released leases without a sticky owner do not block; sticky ones do", t => {
  const old = subnet({});
  const now = subnet({ ranges: [{ start: "198.18.100.100", end: "198.18.100.200" }] });
  const released = lease("198.18.100.7", { status: { phase: "Released" } });
  t.deepEqual(check(now, { old, leases: [released] }), []);
  const sticky = lease("198.18.100.8", { status: { phase: "Released" } });
  sticky.spec!.owner = { kind: "StatefulSet", namespace: "team-a", name: "db", ordinal: 0 };
  t.deepEqual(brief(check(now, { old, leases: [sticky] })), ["spec.ranges strands-leases"]);
  const reserved = lease("198.18.100.9", { status: { phase: "Reserved" } });
  t.deepEqual(brief(check(now, { old, leases: [reserved] })), ["spec.ranges strands-leases"]);
});

test("a lease already outside the old pool does not block other changes", t => {
  const old = subnet({ ranges: [{ start: "198.18.100.100", end: "198.18.100.200" }] });
  const now = subnet({ ranges: [{ start: "198.18.100.100", end: "198.18.100.200" }], mtu: 9000 });
  t.deepEqual(check(now, { old, leases: [lease("198.18.100.7")] }), []);
});

test("on create, leftover leases outside the pool are reported", t => {
  const ps = check(subnet({ ranges: [{ start: "198.18.100.100", end: "198.18.100.200" }] }), {
    leases: [lease("198.18.100.7")],
  });
  t.deepEqual(brief(ps), ["spec.ranges strands-leases"]);
});

test("an unchanged spec or a deleting subnet is always accepted", t => {
  const bad = subnet({ cidr: "198.18.100.5/24" });
  t.deepEqual(check(bad, { old: subnet({ cidr: "198.18.100.5/24" }) }), []);
  const deleting = subnet({ cidr: "bad" });
  deleting.metadata!.deletionTimestamp = new Date();
  t.deepEqual(check(deleting), []);
  // Key order does not matter.
  const a = subnet({ vlan: 1, mode: "vepa" });
  const b = subnet({});
  b.spec = { mode: "vepa", vlan: 1, cidr: "198.18.100.0/24", master: "eth0" };
  t.deepEqual(check(b, { old: a, leases: [lease("198.18.100.7")] }), []);
});

// ---------------------------------------------------------------------------------------------
// One reading of addresses and pools with the IPAM engine (lib/ipam)

test("addresses are read as the apiserver's isIP reads them", t => {
  // ::a.b.c.d is the IPv6 address ::hhhh:hhhh (IPv4-compatible), not a malformed address.
  const compat = check(subnet({ gateway: "::198.18.100.1" }));
  t.deepEqual(brief(compat), ["spec.gateway gateway-outside"]);
  t.regex(compat[0].message, /is IPv6 but spec\.cidr 198\.18\.100\.0\/24 is IPv4/);
  t.deepEqual(check(subnet({ cidr: "::c612:6400/120", gateway: "::198.18.100.1" })), []);
  // An IPv4-mapped address is refused in every field, with the reason.
  const mapped = check(
    subnet({
      gateway: "::ffff:198.18.100.1",
      ranges: [{ start: "::ffff:198.18.100.10", end: "198.18.100.20" }],
      exclude: ["::ffff:198.18.100.7"],
    }),
  );
  t.deepEqual(brief(mapped), [
    "spec.gateway gateway-malformed",
    "spec.ranges[0].start range-malformed",
    "spec.exclude[0] exclude-malformed",
  ]);
  t.regex(mapped[0].message, /IPv4-mapped IPv6 addresses are not allowed/);
});

test("admission and the allocator agree on which addresses are usable", t => {
  // Random valid specs on a /28 (IPv4) or /124 (IPv6); one lease per address on create: a
  // lease is reported as stranded exactly when the allocator would not hand its address out.
  const spec = fc
    .record({
      v6: fc.boolean(),
      gw: fc.option(fc.integer({ min: 1, max: 14 }), { nil: undefined }),
      ranges: fc.uniqueArray(fc.integer({ min: 0, max: 15 }), { maxLength: 4 }),
      exclude: fc.array(
        fc.oneof(
          fc.integer({ min: 0, max: 15 }).map(o => ({ o, len: 0 })),
          fc.integer({ min: 0, max: 3 }).map(o => ({ o: o * 4, len: 2 })),
        ),
        { maxLength: 3 },
      ),
    })
    .map(r => {
      const [base, bits] = r.v6
        ? [ipToBigInt("2001:db8::100"), 128]
        : [ipToBigInt("198.18.100.16"), 32];
      const at = (o: number) => bigIntToIp(r.v6 ? 6 : 4, base + BigInt(o));
      const cuts = [...r.ranges].sort((x, y) => x - y);
      const ranges = [];
      for (let i = 0; i + 1 < cuts.length; i += 2)
        ranges.push({ start: at(cuts[i]), end: at(cuts[i + 1]) });
      return {
        at,
        spec: {
          cidr: `${at(0)}/${bits - 4}`,
          gateway: r.gw === undefined ? undefined : at(r.gw),
          ranges: ranges.length ? ranges : undefined,
          exclude: r.exclude.map(e => (e.len ? `${at(e.o)}/${bits - e.len}` : at(e.o))),
        },
      };
    });
  fc.assert(
    fc.property(spec, ({ at, spec }) => {
      const problems = check(subnet(spec));
      if (problems.some(p => p.code !== "pool-empty")) return false;
      const allocator = new SubnetAllocator("lan", spec);
      if (problems.length > 0 !== (allocator.total === 0n)) return false;
      for (let o = 0; o < 16; o++) {
        const stranded = check(subnet(spec), { leases: [lease(at(o))] }).some(
          p => p.code === "strands-leases",
        );
        if (stranded !== (allocator.stateOf(at(o)) === "outside")) return false;
      }
      return true;
    }),
    { numRuns: 150 },
  );
  t.pass();
});

test("a stored subnet whose spec the IPAM engine rejects hands out nothing", t => {
  // Such objects cannot pass the CRD and this validator; if one exists anyway (stored while
  // the webhook was away), its allocator cannot be built, so it overlaps no pool ...
  const a = subnet({ ranges: [{ start: "198.18.100.10", end: "198.18.100.99" }] }, "team-a");
  const broken = subnet({ ranges: [{ start: "198.18.100.99", end: "198.18.100.10" }] }, "broken");
  t.deepEqual(check(a, { others: [broken] }), []);
  // ... and when it is the stored version of this subnet, every lease counts, as on create.
  const leases = [lease("198.18.100.7")];
  t.deepEqual(brief(check(a, { old: broken, leases })), ["spec.ranges strands-leases"]);
});

// ---------------------------------------------------------------------------------------------
// Message

test("formatProblems makes one admission message naming every field", t => {
  const ps = check(subnet({ cidr: "198.18.100.5/24", vlan: 5000 }, "lan"));
  t.is(
    formatProblems(ps, "lan"),
    'MacvlanSubnet "lan" is invalid: spec.vlan: 5000 is not a VLAN id: use an integer from 1 to 4094, or 0 for untagged; ' +
      "spec.cidr: 198.18.100.5/24 has host bits set: use the network address 198.18.100.0/24",
  );
  t.is(formatProblems([]), "MacvlanSubnet is valid");
});
