// What the decisions read of a Pod (a KFC/V1Pod fits), and which lease admission made for it.
import { MacvlanLease } from "../../crds/types";
import { ANN_IP, ANN_MAC, ANN_RESERVATION, ANN_SUBNET } from "../names";

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

export function claimOf(pod: PodSnapshot): PodClaim | undefined {
  const ann = pod.metadata?.annotations ?? {};
  const subnet = ann[ANN_SUBNET]?.trim();
  const ip = ann[ANN_IP]?.trim();
  if (!subnet || !ip || ip.includes(",")) return undefined;
  return { subnet, ip, mac: ann[ANN_MAC]?.trim(), token: ann[ANN_RESERVATION] };
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
 */
export function isLeaseOf(lease: MacvlanLease, pod: PodSnapshot): boolean {
  if (lease.spec?.podRef?.namespace !== pod.metadata?.namespace) return false;
  if (lease.spec?.podRef?.uid) return isBoundTo(lease, pod);
  const token = tokenOf(pod);
  if (!token || leaseToken(lease) !== token) return false;
  const name = lease.spec?.podRef?.name;
  return !name || name === pod.metadata?.name;
}

/** The pod's lease among candidates: bound to its uid first, then reserved with its token. */
export function leaseOfPod(
  pod: PodSnapshot,
  candidates: Iterable<MacvlanLease>,
): MacvlanLease | undefined {
  let reserved: MacvlanLease | undefined;
  for (const lease of candidates) {
    if (!isLeaseOf(lease, pod)) continue;
    if (isBoundTo(lease, pod) && lease.status?.phase !== "Released") return lease;
    if (!lease.spec?.podRef?.uid && lease.status?.phase !== "Released") reserved ??= lease;
  }
  return reserved;
}

export const podId = (pod: PodSnapshot) =>
  `${pod.metadata?.namespace ?? ""}/${pod.metadata?.name ?? ""}`;
