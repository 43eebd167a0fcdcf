// Renders the managed NetworkAttachmentDefinition for a subnet (design.md §2, "Counting and edge rules").
import { MacvlanSubnet } from "../../crds/types";
import { effectiveParent } from "../validation/parent";
import {
  LABEL_MANAGED_BY,
  LABEL_SUBNET,
  LABEL_SUBNET_DUAL,
  MANAGED_BY,
  dualNadName,
  nadName,
} from "../names";
import { bigIntToIp, cidrContains, tryParseIp, tryParsePrefix } from "../ipam/address";

export const CNI_VERSION = "1.0.0";

/** The parent device as the node sees it: `<master>.<vlan>` for a tagged subnet. */
export function parentDevice(subnet: MacvlanSubnet): string {
  return effectiveParent(subnet.spec!) ?? subnet.spec!.master;
}

export interface CniRoute {
  dst: string;
  gw?: string;
  /** Route metric (CNI `priority`); absent: the kernel's default (0 for IPv4, 1024 for IPv6). */
  priority?: number;
}

/**
 * Metric of the fallback default route via the subnet's gateway. Higher than any default route a
 * cluster CNI puts on eth0 (0 from the bridge plugin, 1024 kernel default for IPv6), so a dual-NIC
 * pod keeps its eth0 default; a single-NIC pod (macvlan is its only NIC) has no other default and
 * uses it. Without it a single-NIC pod on a subnet that does not contain its node's address has only
 * its connected route: it cannot answer its own kubelet's probes (they come from the node's address
 * through the agent's shim) nor reach anything beyond its subnet.
 */
export const FALLBACK_DEFAULT_METRIC = 4096;

/** The default route via the subnet's gateway, at the fallback metric (see FALLBACK_DEFAULT_METRIC). */
export function fallbackDefault(gateway: string): CniRoute {
  return {
    dst: gateway.includes(":") ? "::/0" : "0.0.0.0/0",
    gw: gateway,
    priority: FALLBACK_DEFAULT_METRIC,
  };
}

/**
 * Two half-default routes via the LAN gateway. They outrank the cluster network's default
 * route without deleting it, so the pod's egress leaves on net1 (no SNAT) even where Multus'
 * `default-route` cannot replace eth0's default (Multus 4.2 with netlink 1.3 reports default
 * routes as 0.0.0.0/0 and never deletes them); more specific cluster routes stay on eth0.
 */
export function halfDefaults(gateway: string): CniRoute[] {
  const dsts = gateway.includes(":") ? ["::/1", "8000::/1"] : ["0.0.0.0/1", "128.0.0.0/1"];
  return dsts.map(dst => ({ dst, gw: gateway }));
}

/**
 * On-link /128 routes (no `gw`: on-link, design.md §4) to the nodes' IPv6 route sources, as their
 * agents report them in `status.nodes[].source`. A node reaches its own pods through its shim
 * from that address (the shim carries it as /128); Linux answers neighbour solicitations only
 * for addresses on the receiving interface, so the pod must resolve the node's address on net1
 * itself instead of sending its reply to the router. Sources inside the subnet's CIDR need no
 * route (the connected /64 is on-link already); IPv4 needs none (ARP is answered for any local
 * address). Sorted and deduplicated, so the config only changes when the set of sources does.
 */
export function nodeOnLinkRoutes(subnet: MacvlanSubnet): CniRoute[] {
  const cidr = tryParsePrefix(subnet.spec?.cidr ?? "");
  if (cidr?.family !== 6) return [];
  const out = new Map<bigint, string>();
  for (const n of subnet.status?.nodes ?? []) {
    const ip = tryParseIp(String(n?.source ?? "").trim());
    if (ip?.family !== 6 || cidrContains(cidr, ip)) continue;
    out.set(ip.value, `${bigIntToIp(6, ip.value)}/128`);
  }
  return [...out.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([, dst]) => ({ dst }));
}

/**
 * The chained plugin (cni/reply-route, installed on every node by the agent) that routes replies
 * from the pod's other interfaces (eth0) back out of them. Without it a dual-NIC backend answers a
 * NodePort call that kube-proxy forwarded from another node (masqueraded to that node's LAN address)
 * straight over net1, the forwarding node's conntrack never sees the reply, and kube-proxy drops the
 * connection's next packet as INVALID.
 */
export const REPLY_ROUTE_PLUGIN = "pepr-macvlan-reply";

/**
 * The CNI config JSON a subnet renders to: a plugin list, macvlan then the reply-route plugin.
 * Addresses and MACs come per pod through runtimeConfig. With `dual` (the other family's subnet
 * of a dual-stack pair, lib/decide/admit.ts dualPairProblem) it is the pair's NAD: the first
 * subnet's parent and mode, both subnets' routes.
 */
export function renderNadConfig(subnet: MacvlanSubnet, dual?: MacvlanSubnet): string {
  return JSON.stringify({
    cniVersion: CNI_VERSION,
    name: managedNadName(subnet, dual),
    plugins: [renderMacvlanPlugin(subnet, dual), { type: REPLY_ROUTE_PLUGIN }],
  });
}

/** The managed NAD's name: the subnet's, or the dual-stack pair's. */
export const managedNadName = (subnet: MacvlanSubnet, dual?: MacvlanSubnet) =>
  dual
    ? dualNadName(subnet.metadata!.name!, dual.metadata!.name!)
    : nadName(subnet.metadata!.name!);

/** The routes a pod on the subnet gets on net1 (spec.routes, node /128s, gateway defaults). */
export function subnetRoutes(subnet: MacvlanSubnet): CniRoute[] {
  const spec = subnet.spec!;
  const routes: CniRoute[] = (spec.routes ?? []).map(r =>
    r.gw ? { dst: r.dst, gw: r.gw } : { dst: r.dst },
  );
  routes.push(...nodeOnLinkRoutes(subnet));
  if (spec.podDefaultGateway && spec.gateway) routes.push(...halfDefaults(spec.gateway));
  // One NAD serves dual- and single-NIC pods of a namespace: the fallback default is inert next to
  // eth0's default route and is the single-NIC pod's way back to its node and out of its subnet.
  if (spec.gateway) routes.push(fallbackDefault(spec.gateway));
  return routes;
}

/** The macvlan plugin of the list: parent, mode, static IPAM with the subnet's routes. */
export function renderMacvlanPlugin(
  subnet: MacvlanSubnet,
  dual?: MacvlanSubnet,
): Record<string, unknown> {
  const spec = subnet.spec!;
  const routes = [...subnetRoutes(subnet), ...(dual ? subnetRoutes(dual) : [])];
  return {
    type: "macvlan",
    master: parentDevice(subnet),
    mode: spec.mode ?? "bridge",
    ...(spec.mtu ? { mtu: spec.mtu } : {}),
    capabilities: { ips: true, mac: true },
    // The gateway stays off the address so routes without `gw` are on-link (design.md §4);
    // Multus' default-route selection puts the default route on net1 when podDefaultGateway is set.
    ipam: { type: "static", ...(routes.length ? { routes } : {}) },
  };
}

export interface NetworkAttachmentDefinitionShape {
  apiVersion: "k8s.cni.cncf.io/v1";
  kind: "NetworkAttachmentDefinition";
  metadata: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    ownerReferences: {
      apiVersion: string;
      kind: string;
      name: string;
      uid: string;
      controller: boolean;
      blockOwnerDeletion: boolean;
    }[];
  };
  spec: { config: string };
}

/** The whole NAD object for one namespace, owned by the (cluster-scoped) subnet or pair. */
export function renderNad(
  subnet: MacvlanSubnet,
  namespace: string,
  dual?: MacvlanSubnet,
): NetworkAttachmentDefinitionShape {
  const name = subnet.metadata!.name!;
  const owner = (s: MacvlanSubnet, controller: boolean) => ({
    apiVersion: "macvlan.dev/v1alpha1",
    kind: "MacvlanSubnet",
    name: s.metadata!.name!,
    uid: s.metadata!.uid!,
    controller,
    // The subnet's finalizer already orders deletion; do not make pods wait on NADs.
    blockOwnerDeletion: false,
  });
  return {
    apiVersion: "k8s.cni.cncf.io/v1",
    kind: "NetworkAttachmentDefinition",
    metadata: {
      name: managedNadName(subnet, dual),
      namespace,
      labels: {
        [LABEL_SUBNET]: name,
        ...(dual ? { [LABEL_SUBNET_DUAL]: dual.metadata!.name! } : {}),
        [LABEL_MANAGED_BY]: MANAGED_BY,
      },
      ownerReferences: [owner(subnet, true), ...(dual ? [owner(dual, false)] : [])],
    },
    spec: { config: renderNadConfig(subnet, dual) },
  };
}
