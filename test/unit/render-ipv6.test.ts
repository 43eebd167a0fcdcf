// IPv6 in the managed NAD (design.md §4): the pod's on-link route to its node, the IPv6
// podDefaultGateway routes, and the Multus selection of an IPv6 address.
import test from "ava";
import { MacvlanSubnet } from "../../crds/types";
import { FALLBACK_DEFAULT_METRIC, nodeOnLinkRoutes, renderNadConfig } from "../../lib/render/nad";
import { renderSelection } from "../../lib/render/multus";

const subnet6 = (
  spec: Partial<NonNullable<MacvlanSubnet["spec"]>> = {},
  sources: (string | undefined)[] = [],
): MacvlanSubnet =>
  ({
    metadata: { name: "lan6", uid: "u-6", generation: 1 },
    spec: { master: "eth0", cidr: "2001:db8:100::/64", gateway: "2001:db8:100::1", ...spec },
    status: {
      nodes: sources.map((source, i) => ({
        node: `n${i}`,
        ready: true,
        ...(source ? { source } : {}),
      })),
    },
  }) as MacvlanSubnet;

// The macvlan plugin is the first of the NAD's plugin list.
const routesOf = (s: MacvlanSubnet) => JSON.parse(renderNadConfig(s)).plugins[0].ipam.routes;

test("IPv6: an on-link /128 (no gw) to every node's reported source outside the subnet", t => {
  const s = subnet6({}, ["2001:db8:18::12", "2001:DB8:18:0::11", undefined, "2001:db8:18::11"]);
  t.deepEqual(nodeOnLinkRoutes(s), [
    { dst: "2001:db8:18::11/128" },
    { dst: "2001:db8:18::12/128" },
  ]);
  t.deepEqual(routesOf(s), [
    { dst: "2001:db8:18::11/128" },
    { dst: "2001:db8:18::12/128" },
    { dst: "::/0", gw: "2001:db8:100::1", priority: FALLBACK_DEFAULT_METRIC },
  ]);
  const ipam = JSON.parse(renderNadConfig(s)).plugins[0].ipam;
  t.false("gateway" in ipam, "the address carries no gateway, so routes without gw stay on-link");
});

test("IPv6: sources inside the subnet (the connected /64 is on-link), IPv4 ones and junk get no route", t => {
  const s = subnet6({}, ["2001:db8:100::11", "198.18.0.11", "not-an-ip", "fe80::1%eth0"]);
  t.deepEqual(nodeOnLinkRoutes(s), []);
});

test("IPv4 subnets never get node routes (ARP is answered for any local address)", t => {
  const s = subnet6({ cidr: "198.18.100.0/24", gateway: "198.18.100.1" }, [
    "198.18.0.11",
    "2001:db8:18::11",
  ]);
  t.deepEqual(nodeOnLinkRoutes(s), []);
});

test("the config is stable: same sources in another order render the same bytes", t => {
  const a = renderNadConfig(subnet6({}, ["2001:db8:18::12", "2001:db8:18::11"]));
  const b = renderNadConfig(subnet6({}, ["2001:db8:18::11", "2001:db8:18::12", "2001:db8:18::11"]));
  t.is(a, b);
});

test("IPv6 podDefaultGateway: half defaults ::/1 and 8000::/1 via the gateway, after the node routes", t => {
  const s = subnet6({ podDefaultGateway: true }, ["2001:db8:18::11"]);
  t.deepEqual(routesOf(s), [
    { dst: "2001:db8:18::11/128" },
    { dst: "::/1", gw: "2001:db8:100::1" },
    { dst: "8000::/1", gw: "2001:db8:100::1" },
    { dst: "::/0", gw: "2001:db8:100::1", priority: FALLBACK_DEFAULT_METRIC },
  ]);
  const sel = renderSelection(s, "team-a", "2001:db8:100::7", "02:00:00:00:00:07", {});
  t.deepEqual(sel.ips, ["2001:db8:100::7/64"]);
  t.deepEqual(sel["default-route"], ["2001:db8:100::1"]);
});
