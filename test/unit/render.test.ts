import test from "ava";
import { MacvlanSubnet } from "../../crds/types";
import {
  FALLBACK_DEFAULT_METRIC,
  REPLY_ROUTE_PLUGIN,
  parentDevice,
  renderNad,
  renderNadConfig,
} from "../../lib/render/nad";
import { mergeSelections, renderSelection } from "../../lib/render/multus";

/** The macvlan plugin of the NAD's plugin list. */
const macvlanOf = (s: MacvlanSubnet) => JSON.parse(renderNadConfig(s)).plugins[0];

const subnet = (spec: Partial<NonNullable<MacvlanSubnet["spec"]>> = {}): MacvlanSubnet =>
  ({
    metadata: { name: "lan", uid: "u-1", generation: 1 },
    spec: { master: "eth0", cidr: "198.18.100.0/24", gateway: "198.18.100.1", ...spec },
  }) as MacvlanSubnet;

test("the NAD config is macvlan on the parent with static IPAM and runtime ips/mac", t => {
  const config = macvlanOf(
    subnet({
      mode: "private",
      mtu: 1400,
      routes: [{ dst: "198.18.200.0/24", gw: "198.18.100.254" }],
    }),
  );
  t.is(config.type, "macvlan");
  t.is(config.master, "eth0");
  t.is(config.mode, "private");
  t.is(config.mtu, 1400);
  t.deepEqual(config.capabilities, { ips: true, mac: true });
  t.deepEqual(config.ipam, {
    type: "static",
    routes: [
      { dst: "198.18.200.0/24", gw: "198.18.100.254" },
      { dst: "0.0.0.0/0", gw: "198.18.100.1", priority: FALLBACK_DEFAULT_METRIC },
    ],
  });
});

test("a tagged subnet uses the VLAN sub-interface as parent; mode defaults to bridge, no mtu when unset", t => {
  t.is(parentDevice(subnet({ vlan: 100 })), "eth0.100");
  const config = macvlanOf(subnet({ vlan: 100, gateway: undefined }));
  t.is(config.master, "eth0.100");
  t.is(config.mode, "bridge");
  t.false("mtu" in config);
  t.deepEqual(config.ipam, { type: "static" }, "no gateway: no routes at all");
});

test("the NAD object is named, labelled and owned as the contract says", t => {
  const nad = renderNad(subnet(), "team-a");
  t.is(nad.metadata.name, "macvlan-lan");
  t.is(nad.metadata.namespace, "team-a");
  t.deepEqual(nad.metadata.labels, {
    "macvlan.dev/subnet": "lan",
    "app.kubernetes.io/managed-by": "pepr-macvlan",
  });
  t.is(nad.metadata.ownerReferences[0].kind, "MacvlanSubnet");
  t.is(nad.metadata.ownerReferences[0].uid, "u-1");
});

test("the selection carries net1, the address with its prefix length and the MAC", t => {
  const sel = renderSelection(subnet(), "team-a", "198.18.100.7", "02:00:00:00:00:07");
  t.deepEqual(sel, {
    name: "macvlan-lan",
    namespace: "team-a",
    interface: "net1",
    ips: ["198.18.100.7/24"],
    mac: "02:00:00:00:00:07",
  });
});

test("podDefaultGateway adds default-route via the subnet gateway; single-NIC has no interface name", t => {
  t.deepEqual(
    renderSelection(subnet({ podDefaultGateway: true }), "a", "198.18.100.7", "m")["default-route"],
    ["198.18.100.1"],
  );
  const single = renderSelection(subnet({ podDefaultGateway: true }), "a", "198.18.100.7", "m", {
    singleNic: true,
  });
  t.false("interface" in single);
  t.false("default-route" in single);
});

test("IPv6 addresses keep their prefix length", t => {
  const sel = renderSelection(
    subnet({ cidr: "2001:db8:100::/64", gateway: undefined }),
    "a",
    "2001:db8:100::7",
    "m",
  );
  t.deepEqual(sel.ips, ["2001:db8:100::7/64"]);
});

test("merging keeps the user's other networks and replaces a stale copy of ours", t => {
  const ours = { name: "macvlan-lan", namespace: "a", ips: ["198.18.100.9/24"] };
  const merged = mergeSelections(
    [
      { name: "macvlan-lan", namespace: "a" },
      { name: "storage", namespace: "a" },
    ],
    ours,
  );
  t.deepEqual(merged, [ours, { name: "storage", namespace: "a" }]);
});

test("podDefaultGateway routes egress via net1 with two half-default routes", t => {
  const config = macvlanOf(subnet({ podDefaultGateway: true }));
  t.deepEqual(config.ipam.routes, [
    { dst: "0.0.0.0/1", gw: "198.18.100.1" },
    { dst: "128.0.0.0/1", gw: "198.18.100.1" },
    { dst: "0.0.0.0/0", gw: "198.18.100.1", priority: FALLBACK_DEFAULT_METRIC },
  ]);
  const v6 = macvlanOf(
    subnet({ cidr: "2001:db8:100::/64", gateway: "2001:db8:100::1", podDefaultGateway: true }),
  );
  t.deepEqual(
    v6.ipam.routes.map((r: { dst: string }) => r.dst),
    ["::/1", "8000::/1", "::/0"],
  );
});

test("a subnet with a gateway gives every pod a fallback default route via it, behind eth0's default", t => {
  // A single-NIC pod on 198.18.248.0/24 (nodes on 198.18.0.0/16) had only its connected route: it
  // could not answer its kubelet's probes (from the node's address, through the agent's shim).
  const config = macvlanOf(subnet({ cidr: "198.18.248.0/24", gateway: "198.18.248.1" }));
  t.deepEqual(config.ipam.routes, [{ dst: "0.0.0.0/0", gw: "198.18.248.1", priority: 4096 }]);
  // The metric keeps it behind any default a cluster CNI puts on eth0 (bridge: 0; IPv6: 1024), so
  // one NAD serves dual-NIC pods (eth0 default wins) and single-NIC pods (their only default).
  t.true(FALLBACK_DEFAULT_METRIC > 1024);
  // The address itself carries no gateway: routes without gw stay on-link (design.md §4).
  t.deepEqual(Object.keys(config.ipam).sort(), ["routes", "type"]);
  const v6 = macvlanOf(subnet({ cidr: "2001:db8:248::/64", gateway: "2001:db8:248::1" }));
  t.deepEqual(v6.ipam.routes, [{ dst: "::/0", gw: "2001:db8:248::1", priority: 4096 }]);
  // No gateway, no default: the subnet is then a closed L2 segment.
  t.false(
    "routes" in macvlanOf(subnet({ gateway: undefined })).ipam,
    "no gateway: no fallback default",
  );
});

test("the NAD is a plugin list: macvlan, then the plugin that routes eth0's replies back out of eth0", t => {
  // Without the second plugin a dual-NIC NodePort backend answered a request that kube-proxy had
  // forwarded from another node (masqueraded to that node's LAN address) over net1; the forwarding
  // node's conntrack never saw the reply and dropped the connection (half the NodePort calls hung).
  const list = JSON.parse(renderNadConfig(subnet()));
  t.is(list.name, "macvlan-lan");
  t.is(list.cniVersion, "1.0.0");
  t.deepEqual(
    list.plugins.map((p: { type: string }) => p.type),
    ["macvlan", REPLY_ROUTE_PLUGIN],
  );
  t.is(REPLY_ROUTE_PLUGIN, "pepr-macvlan-reply", "the binary name the agent installs");
});
