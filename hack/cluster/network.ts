// The simulated LAN: a bridge in its own network namespace, a router namespace, one namespace
// per node and a host-side veth so the control plane (host network namespace) is on the LAN.
//
//   host netns: pmv-host 198.18.0.2/16 ──┐            routes 198.19.<i>.0/24 via 198.18.0.<10+i>
//   pmv-gw:     eth0 198.18.0.1/16 ──────┤ br-lan     (in pmv-lan; ports p-host, p-gw, p-node-<i>)
//   pmv-node-i: eth0 198.18.0.<10+i>/16 ─┘            cni0 198.19.<i>.1/24 (CNI bridge), pods
//   pmv-gw routes 198.19.<i>.0/24 via node i and the service CIDR 198.19.128.0/17 via all nodes
import * as fs from "node:fs";
import {
  GW_IP,
  GW_IP6,
  GW_NETNS,
  HOST_IP,
  HOST_IP6,
  HOST_LINK,
  LAN6_PREFIX,
  LAN_BRIDGE,
  LAN_NETNS,
  LAN_PREFIX,
  NETNS_PREFIX,
  NodeSpec,
  SERVICE_CIDR,
  CLUSTER_POD_CIDR,
} from "./config";
import { run, runOk } from "./proc";

const ip = (...args: string[]) => runOk("ip", args);
const ipn = (ns: string, ...args: string[]) => runOk("ip", ["-n", ns, ...args]);
const sysctl = (ns: string, key: string, value: string) =>
  runOk("ip", ["netns", "exec", ns, "sysctl", "-q", "-w", `${key}=${value}`]);

export function netnsList(): string[] {
  try {
    return fs.readdirSync("/run/netns").sort();
  } catch {
    return [];
  }
}

export const netnsExists = (name: string) => fs.existsSync(`/run/netns/${name}`);

/** Network namespaces the cluster made (all start with `pmv-`). */
export const clusterNetns = () => netnsList().filter(n => n.startsWith(NETNS_PREFIX));

/** A node's port on the LAN bridge (a veth in `pmv-lan`; its peer is the node's eth0). */
export const nodeLanPort = (n: Pick<NodeSpec, "index">) => `p-node-${n.index}`;

export function linkExists(name: string, ns?: string): boolean {
  return run("ip", [...(ns ? ["-n", ns] : []), "link", "show", "dev", name]).code === 0;
}

function addNetns(name: string): void {
  ip("netns", "add", name);
  ipn(name, "link", "set", "lo", "up");
  // No IPv6 router advertisements or autoconf surprises on the simulated LAN.
  sysctl(name, "net.ipv6.conf.all.accept_ra", "0");
  sysctl(name, "net.ipv6.conf.default.accept_ra", "0");
}

export function setupLan(nodes: NodeSpec[]): void {
  addNetns(LAN_NETNS);
  // The LAN bridge is a plain switch: no addresses, no IPv6 on its ports.
  sysctl(LAN_NETNS, "net.ipv6.conf.all.disable_ipv6", "1");
  sysctl(LAN_NETNS, "net.ipv6.conf.default.disable_ipv6", "1");
  ipn(
    LAN_NETNS,
    "link",
    "add",
    LAN_BRIDGE,
    "type",
    "bridge",
    "stp_state",
    "0",
    "forward_delay",
    "0",
  );
  ipn(LAN_NETNS, "link", "set", LAN_BRIDGE, "up");

  const plug = (port: string, peerNs: string | undefined, peerName: string) => {
    const peer = peerNs
      ? ["peer", "name", peerName, "netns", peerNs]
      : ["peer", "name", peerName, "netns", String(process.pid)];
    ipn(LAN_NETNS, "link", "add", port, "type", "veth", ...peer);
    ipn(LAN_NETNS, "link", "set", port, "master", LAN_BRIDGE, "up");
  };

  // LAN router
  addNetns(GW_NETNS);
  plug("p-gw", GW_NETNS, "eth0");
  sysctl(GW_NETNS, "net.ipv4.ip_forward", "1");
  sysctl(GW_NETNS, "net.ipv6.conf.all.forwarding", "1");
  ipn(GW_NETNS, "addr", "add", `${GW_IP}/${LAN_PREFIX}`, "dev", "eth0");
  ipn(GW_NETNS, "addr", "add", `${GW_IP6}/${LAN6_PREFIX}`, "dev", "eth0", "nodad");
  ipn(GW_NETNS, "link", "set", "eth0", "up");

  // Host side: the control plane's address on the LAN.
  plug("p-host", undefined, HOST_LINK);
  ip("addr", "add", `${HOST_IP}/${LAN_PREFIX}`, "dev", HOST_LINK);
  ip("addr", "add", `${HOST_IP6}/${LAN6_PREFIX}`, "dev", HOST_LINK, "nodad");
  ip("link", "set", HOST_LINK, "up");

  for (const n of nodes) {
    addNetns(n.name);
    plug(nodeLanPort(n), n.name, "eth0");
    sysctl(n.name, "net.ipv4.ip_forward", "1");
    sysctl(n.name, "net.ipv6.conf.all.forwarding", "1");
    ipn(n.name, "addr", "add", `${n.ip}/${LAN_PREFIX}`, "dev", "eth0");
    ipn(n.name, "addr", "add", `${n.ip6}/${LAN6_PREFIX}`, "dev", "eth0", "nodad");
    ipn(n.name, "link", "set", "eth0", "up");
    ipn(n.name, "route", "add", "default", "via", GW_IP, "dev", "eth0");
    ipn(n.name, "-6", "route", "add", "default", "via", GW_IP6, "dev", "eth0");
    // Pod CIDRs of the other nodes, directly via their LAN address.
    for (const o of nodes) {
      if (o.index !== n.index) ipn(n.name, "route", "add", o.podCIDR, "via", o.ip, "dev", "eth0");
    }
    masqueradePodEgress(n);
    // The router and the host know every node's pod CIDR too.
    ipn(GW_NETNS, "route", "add", n.podCIDR, "via", n.ip, "dev", "eth0");
    ip("route", "add", n.podCIDR, "via", n.ip, "dev", HOST_LINK);
  }
  routeServicesFromLan(nodes);
}

/**
 * Pods' eth0 traffic that leaves the cluster network is masqueraded to the node's address, as the
 * cluster CNIs of real clusters do (flannel's ip-masq, kindnet, Calico's natOutgoing); pod to pod
 * (198.19.0.0/17) keeps the pod's address. Traffic on a macvlan net1 never crosses the node's
 * netfilter, so it keeps the pod's LAN address.
 */
function masqueradePodEgress(n: NodeSpec): void {
  runOk("ip", [
    ...["netns", "exec", n.name, "iptables", "-w", "-t", "nat", "-A", "POSTROUTING"],
    ...["-s", CLUSTER_POD_CIDR, "!", "-d", CLUSTER_POD_CIDR, "-o", "eth0"],
    ...["-m", "comment", "--comment", "pmv: pod egress to the node address", "-j", "MASQUERADE"],
  ]);
}

/**
 * The LAN router sends the service CIDR to the nodes (ECMP over all of them), as a router that
 * learns the cluster's service range by BGP would. kube-proxy on the node DNATs to an endpoint and
 * masquerades (the source is outside clusterCIDR), so the reply comes back the same way: LAN hosts
 * and single-NIC macvlan pods (their default route is the LAN router) reach ClusterIPs.
 */
function routeServicesFromLan(nodes: NodeSpec[]): void {
  const hops = nodes.flatMap(n => ["nexthop", "via", n.ip, "dev", "eth0"]);
  ipn(GW_NETNS, "route", "add", SERVICE_CIDR, ...hops);
}

/**
 * Removes what setupLan made: the host veth (and with it its routes) and the given network
 * namespaces. Deleting a namespace destroys the veth ends inside it, and their peers.
 */
export function teardownLan(namespaces: string[]): string[] {
  const errors: string[] = [];
  if (linkExists(HOST_LINK)) {
    const r = run("ip", ["link", "del", HOST_LINK]);
    if (r.code !== 0) errors.push(`ip link del ${HOST_LINK}: ${r.stderr.trim()}`);
  }
  for (const ns of namespaces) {
    if (!netnsExists(ns)) continue;
    const r = run("ip", ["netns", "del", ns]);
    if (r.code !== 0) errors.push(`ip netns del ${ns}: ${r.stderr.trim()}`);
  }
  return errors;
}

/**
 * Plugs a node's LAN cable in or out: its veth port on the LAN bridge (`p-node-<i>` in
 * `pmv-lan`) up or down. The node keeps its addresses and routes; nothing reaches it meanwhile.
 */
export function setNodeLanLink(node: NodeSpec, up: boolean): void {
  ipn(LAN_NETNS, "link", "set", nodeLanPort(node), up ? "up" : "down");
}
