// Which local pods have a macvlan address, and which (pure).
import {
  ANN_IP,
  ANN_MULTUS_NETWORKS,
  ANN_NETWORK_STATUS,
  ANN_SUBNET,
  subnetsOfNadName,
} from "../lib/names";
import type { MacvlanSubnetSpec } from "../crds/types";
import { parseNetworks, type NetworkSelection } from "../lib/multus";
import { canonicalIP, cidrContains, parseCIDR } from "./ip";

/** The parts of a Pod the agent reads (a V1Pod fits). */
export interface PodLike {
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    annotations?: Record<string, string>;
    deletionTimestamp?: Date | string;
  };
  spec?: { nodeName?: string; hostNetwork?: boolean };
  status?: { phase?: string };
}

export interface SubnetLike {
  name: string;
  spec: MacvlanSubnetSpec;
}

export interface PodAddress {
  /** namespace/name */
  pod: string;
  subnet: string;
  ip: string;
  /** Where the address came from. */
  source: "network-status" | "networks" | "annotation";
}

export type PodResolution =
  | { kind: "address"; address: PodAddress }
  | { kind: "ignored"; reason: string }
  /** The pod asks for macvlan but the agent cannot tell its address or subnet yet. */
  | { kind: "unresolved"; pod: string; reason: string };

interface NetworkStatusEntry {
  name?: string;
  interface?: string;
  ips?: string[];
  default?: boolean;
}

/** The network-status annotation: a JSON array of objects, else nothing. */
function parseJSONArray<T>(s: string | undefined): T[] {
  if (!s) return [];
  try {
    const v: unknown = JSON.parse(s);
    return Array.isArray(v) ? (v.filter(x => x && typeof x === "object") as T[]) : [];
  } catch {
    return [];
  }
}

/** The Multus selections, read as Multus reads them; none when Multus would refuse them. */
function parseSelections(annotation: string | undefined, podNamespace: string): NetworkSelection[] {
  const parsed = parseNetworks(annotation, podNamespace);
  return parsed.ok ? parsed.selections : [];
}

/** The subnets a network name stands for: `ns/macvlan-x` → [x], `macvlan-x.y` → [x, y]. */
function subnetsOfNetworkName(name: string | undefined): string[] | undefined {
  if (!name) return undefined;
  const base = name.includes("/") ? name.slice(name.lastIndexOf("/") + 1) : name;
  return subnetsOfNadName(base);
}

/** `ns/macvlan-x` or `macvlan-x` → `x` (a dual-stack pair's NAD: its first subnet). */
const subnetOfNetworkName = (name: string | undefined) => subnetsOfNetworkName(name)?.[0];

/** Whether the managed network of that name carries addresses of `subnet`. */
const serves = (name: string | undefined, subnet: string) =>
  !!subnetsOfNetworkName(name)?.includes(subnet);

/**
 * Every macvlan address of one pod: one, or one per family for a dual-stack pod
 * (`macvlan.dev/subnet: a,b`), each resolved as resolvePodAddress does for its subnet.
 */
export function resolvePodAddresses(pod: PodLike, subnets: SubnetLike[]): PodResolution[] {
  const named = (pod.metadata?.annotations?.[ANN_SUBNET] ?? "").split(",").map(x => x.trim());
  if (named.length !== 2 || !named.every(Boolean)) return [resolvePodAddress(pod, subnets)];
  return named.map(n => resolvePodAddress(pod, subnets, n));
}

const stripPrefix = (ip: string) => ip.split("/")[0];

/** A pod that runs here, is not terminating and not finished. */
export function isLivePodOn(pod: PodLike, node: string): boolean {
  if (pod.spec?.nodeName !== node) return false;
  if (pod.metadata?.deletionTimestamp) return false;
  const phase = pod.status?.phase;
  return phase !== "Succeeded" && phase !== "Failed";
}

/**
 * The macvlan address of one pod, in this order of trust:
 * 1. the Multus `network-status` entry of the managed network (or of `net1`): the real IP;
 * 2. the `ips` of the managed network in the Multus selection the operator wrote;
 * 3. the `macvlan.dev/ip` annotation, when it holds exactly one address.
 * The subnet comes from the `macvlan.dev/subnet` pod annotation, else from the managed NAD
 * name (`macvlan-<subnet>`), else from the subnet whose CIDR holds the address (subnets never
 * overlap). The address must lie inside the subnet's CIDR.
 */
export function resolvePodAddress(
  pod: PodLike,
  subnets: SubnetLike[],
  only?: string,
): PodResolution {
  const ann = pod.metadata?.annotations ?? {};
  const id = `${pod.metadata?.namespace ?? ""}/${pod.metadata?.name ?? ""}`;
  if (pod.spec?.hostNetwork) return { kind: "ignored", reason: "hostNetwork pod" };

  const byName = new Map(subnets.map(s => [s.name, s]));
  const statuses = parseJSONArray<NetworkStatusEntry>(ann[ANN_NETWORK_STATUS]);
  const selections = parseSelections(ann[ANN_MULTUS_NETWORKS], pod.metadata?.namespace ?? "");
  const managedSel = selections.find(s => subnetOfNetworkName(s.name) !== undefined);
  const managedStatus = statuses.find(s => subnetOfNetworkName(s.name) !== undefined);

  const wantsMacvlan =
    ANN_IP in ann || ANN_SUBNET in ann || managedSel !== undefined || managedStatus !== undefined;
  if (!wantsMacvlan) return { kind: "ignored", reason: "no macvlan annotations" };

  let subnetName: string | undefined =
    only ||
    ann[ANN_SUBNET]?.split(",")[0]?.trim() ||
    subnetOfNetworkName(managedSel?.name) ||
    subnetOfNetworkName(managedStatus?.name);

  // Candidate addresses, best first.
  const candidates: { ip: string; source: PodAddress["source"] }[] = [];
  const statusEntry =
    (subnetName && statuses.find(s => serves(s.name, subnetName!))) ||
    managedStatus ||
    statuses.find(s => s.interface === "net1");
  for (const ip of statusEntry?.ips ?? []) {
    const c = canonicalIP(stripPrefix(String(ip)));
    if (c) candidates.push({ ip: c, source: "network-status" });
  }
  const selEntry = (subnetName && selections.find(s => serves(s.name, subnetName!))) || managedSel;
  for (const ip of selEntry?.ips ?? []) {
    const c = canonicalIP(stripPrefix(String(ip)));
    if (c) candidates.push({ ip: c, source: "networks" });
  }
  const annIPs = (ann[ANN_IP] ?? "")
    .split(",")
    .map(x => x.trim())
    .filter(Boolean);
  // One address, or a dual-stack pod's two (the one inside the subnet is taken below); a list of
  // fixed IPs to choose from is not an address.
  if (annIPs.length === 1 || (only && annIPs.length === 2)) {
    for (const ip of annIPs) {
      const c = canonicalIP(stripPrefix(ip));
      if (c) candidates.push({ ip: c, source: "annotation" });
    }
  }

  if (!subnetName) {
    // Fall back to the subnet whose CIDR holds a candidate address.
    for (const cand of candidates) {
      const hit = subnets.find(s => {
        const c = parseCIDR(s.spec.cidr);
        return c !== undefined && cidrContains(c, cand.ip);
      });
      if (hit) {
        subnetName = hit.name;
        break;
      }
    }
  }
  if (!subnetName) {
    return {
      kind: "unresolved",
      pod: id,
      reason: "no subnet named and no address inside a known subnet",
    };
  }
  const subnet = byName.get(subnetName);
  if (!subnet) return { kind: "unresolved", pod: id, reason: `subnet ${subnetName} not found` };
  const cidr = parseCIDR(subnet.spec.cidr);
  if (!cidr) return { kind: "unresolved", pod: id, reason: `subnet ${subnetName} has a bad cidr` };

  const inside = candidates.find(c => cidrContains(cidr, c.ip));
  if (!inside) {
    return {
      kind: "unresolved",
      pod: id,
      reason: candidates.length
        ? `address ${candidates[0].ip} is outside subnet ${subnetName} (${subnet.spec.cidr})`
        : "no macvlan address yet",
    };
  }
  return {
    kind: "address",
    address: { pod: id, subnet: subnetName, ip: inside.ip, source: inside.source },
  };
}
