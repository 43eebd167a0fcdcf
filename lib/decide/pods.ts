// What the decisions read of a Pod (a KFC/V1Pod fits), and which lease admission made for it.
import { MacvlanLease } from "../../crds/types";
import { ANN_IP, ANN_MAC, ANN_RESERVATION, ANN_SUBNET } from "../names";
import { NamespaceInfo, requestedSubnet } from "../selection";
import { isPoolLease, tokenOpens } from "./pool";

export interface PodSnapshot {
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: { kind: string; name: string; uid?: string; controller?: boolean }[];
    deletionTimestamp?: Date | string;
  };
  spec?: { nodeName?: string };
  status?: { phase?: string; conditions?: { type: string; status: string }[] };
}

/** What a pod's annotations say it holds: input, never proof (a tenant can write them). */
export interface PodClaim {
  subnet: string;
  ip: string;
  mac?: string;
  token?: string;
}

/**
 * What a pod's annotations claim, one entry per subnet: one, or two for dual stack
 * (`macvlan.dev/subnet: a,b` with `macvlan.dev/ip: <ip in a>,<ip in b>`, one MAC, one token).
 * A list of fixed IPs to choose from (before admission) claims nothing.
 */
export function claimsOf(pod: PodSnapshot): PodClaim[] {
  const ann = pod.metadata?.annotations ?? {};
  const split = (v: string | undefined) => (v ?? "").split(",").map(x => x.trim());
  const subnets = split(ann[ANN_SUBNET]);
  const ips = split(ann[ANN_IP]);
  if (subnets.length !== ips.length || subnets.length > 2) return [];
  if ([...subnets, ...ips].some(x => !x) || new Set(subnets).size < subnets.length) return [];
  const mac = ann[ANN_MAC]?.trim();
  return subnets.map((subnet, i) => ({ subnet, ip: ips[i], mac, token: ann[ANN_RESERVATION] }));
}

/** The pod's claim when it claims one address (not dual stack). */
export function claimOf(pod: PodSnapshot): PodClaim | undefined {
  const claims = claimsOf(pod);
  return claims.length === 1 ? claims[0] : undefined;
}

export const tokenOf = (pod: PodSnapshot) => pod.metadata?.annotations?.[ANN_RESERVATION] || "";
export const leaseToken = (lease: MacvlanLease) =>
  lease.metadata?.annotations?.[ANN_RESERVATION] || "";

/** The lease is bound to exactly this pod (same uid). */
export const isBoundTo = (lease: MacvlanLease, pod: PodSnapshot) =>
  !!pod.metadata?.uid && lease.spec?.podRef?.uid === pod.metadata.uid;

/**
 * Whether `lease` is the one admission made for `pod`: bound to its uid, or not yet bound to
 * anyone and carrying the pod's reservation token, in the pod's namespace. A token copied from
 * another pod does not help: once that lease is bound, only its uid counts.
 * A replica's pool lease (lib/decide/pool.ts) names no namespace yet: it is the pod's when the
 * pod's token opens its commitment, the pod claims its address, and admission saw the pod and
 * asked for that subnet (its namespace, given in `namespace`, is one the webhooks see and the
 * pod's annotation or the namespace's label names the subnet), so that admission, not the
 * pod's author, wrote the token. Without `namespace` a pool lease never matches.
 */
export function isLeaseOf(
  lease: MacvlanLease,
  pod: PodSnapshot,
  namespace?: NamespaceInfo,
): boolean {
  if (isPoolLease(lease)) return poolLeaseOf(lease, pod, namespace);
  if (lease.spec?.podRef?.namespace !== pod.metadata?.namespace) return false;
  if (lease.spec?.podRef?.uid) return isBoundTo(lease, pod);
  const token = tokenOf(pod);
  if (!token || leaseToken(lease) !== token) return false;
  const name = lease.spec?.podRef?.name;
  return !name || name === pod.metadata?.name;
}

/**
 * Namespaces the module's webhooks never see (package.json `pepr.alwaysIgnore.namespaces`; a unit
 * test keeps the two equal): a pod there was not admitted by us, whatever its annotations say.
 */
export const UNADMITTED_NAMESPACES: readonly string[] = [
  "kube-system",
  "kube-public",
  "kube-node-lease",
  "pepr-system",
];

function poolLeaseOf(lease: MacvlanLease, pod: PodSnapshot, namespace?: NamespaceInfo): boolean {
  if (!namespace || namespace.name !== pod.metadata?.namespace) return false;
  if (UNADMITTED_NAMESPACES.includes(namespace.name)) return false;
  const claim = claimOf(pod);
  if (claim?.subnet !== lease.spec?.subnet || claim?.ip !== lease.spec?.ip) return false;
  if (requestedSubnet(pod.metadata?.annotations, namespace) !== lease.spec?.subnet) return false;
  return tokenOpens(lease, tokenOf(pod));
}

/** The pod's lease among candidates: bound to its uid first, then reserved with its token. */
export function leaseOfPod(
  pod: PodSnapshot,
  candidates: Iterable<MacvlanLease>,
  namespace?: NamespaceInfo,
): MacvlanLease | undefined {
  let reserved: MacvlanLease | undefined;
  for (const lease of candidates) {
    if (!isLeaseOf(lease, pod, namespace)) continue;
    if (isBoundTo(lease, pod) && lease.status?.phase !== "Released") return lease;
    if (!lease.spec?.podRef?.uid && lease.status?.phase !== "Released") reserved ??= lease;
  }
  return reserved;
}

/** The pod's leases among candidates, one per subnet (two for a dual-stack pod), as leaseOfPod. */
export function leasesOfPod(
  pod: PodSnapshot,
  candidates: Iterable<MacvlanLease>,
  namespace?: NamespaceInfo,
): MacvlanLease[] {
  const bySubnet = new Map<string, MacvlanLease[]>();
  for (const l of candidates) {
    const subnet = l.spec?.subnet ?? "";
    bySubnet.set(subnet, [...(bySubnet.get(subnet) ?? []), l]);
  }
  return [...bySubnet.values()].flatMap(group => {
    const lease = leaseOfPod(pod, group, namespace);
    return lease ? [lease] : [];
  });
}

/**
 * The claims of a pod that no lease of its own backs: what the guarded repair may recreate (a
 * lost lease, a dual-stack pod's lost second lease). None when the pod's leases and its claims
 * disagree on a subnet (edited annotations: binding warns, nothing is made for them).
 */
export function unleasedClaims(pod: PodSnapshot, leases: MacvlanLease[]): PodClaim[] {
  const claims = claimsOf(pod);
  const claimed = new Set(claims.map(c => c.subnet));
  if (leases.some(l => !claimed.has(l.spec?.subnet ?? ""))) return [];
  const held = new Set(leases.map(l => l.spec?.subnet));
  return claims.filter(c => !held.has(c.subnet));
}

export const podId = (pod: PodSnapshot) =>
  `${pod.metadata?.namespace ?? ""}/${pod.metadata?.name ?? ""}`;
