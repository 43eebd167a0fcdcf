// Binding: a pod that admission leased for is seen by the watcher; its lease gets the pod's uid
// and node, phase Bound. Only the lease admission made (by uid or reservation token) is bound;
// a pod's annotations alone never make or move a lease, except the guarded repair below.
import { MacvlanLease, MacvlanSubnet } from "../../crds/types";
import { leaseName } from "../ipam";
import { renderLease } from "../render/lease";
import { stickyOwnerOf } from "../owner";
import { NamespaceInfo, namespaceAllowed } from "../selection";
import { PodClaim, PodSnapshot, claimsOf, isBoundTo, podId, tokenOf } from "./pods";
import { claimedMetadata, isPoolLease } from "./pool";
import { Write, event, podTarget, preconditionOf } from "./writes";

/** Bound to this pod, on the node it runs on (if scheduled): nothing to write. */
export const isSettled = (lease: MacvlanLease, pod: PodSnapshot) =>
  isBoundTo(lease, pod) &&
  (!pod.spec?.nodeName || lease.spec?.node === pod.spec.nodeName) &&
  lease.status?.phase === "Bound";

/** The writes that bind `lease`, admission's lease for `pod`, to it. */
export function bindWrites(pod: PodSnapshot, lease: MacvlanLease, now: Date): Write[] {
  if (isSettled(lease, pod) || pod.metadata?.deletionTimestamp) return [];
  const namespace = pod.metadata!.namespace!;
  const owner = stickyOwnerOf(pod, namespace);
  const node = pod.spec?.nodeName;
  const lock = preconditionOf(lease);
  const writes: Write[] = [
    {
      op: "patchLease",
      lease: lock,
      spec: {
        podRef: { namespace, name: pod.metadata!.name!, uid: pod.metadata!.uid! },
        ...(node ? { node } : {}),
        ...(owner ? { owner } : {}),
      },
      // A replica's pool lease becomes an ordinary lease of the pod (owner annotation dropped).
      ...(isPoolLease(lease) ? claimedMetadata(lease, tokenOf(pod), namespace) : {}),
    },
    {
      op: "setLeaseStatus",
      lease: lock,
      status: {
        ...lease.status,
        phase: "Bound",
        reservedAt: lease.status?.reservedAt ?? toIso(lease.metadata?.creationTimestamp, now),
      },
    },
  ];
  // The pod's claim of this lease's family (dual stack claims two), or its only claim.
  const claims = claimsOf(pod);
  const claim = claims.find(c => c.subnet === lease.spec?.subnet) ?? claims[0];
  if (claim && (claim.ip !== lease.spec?.ip || claim.subnet !== lease.spec?.subnet)) {
    writes.push(tamperedEvent(pod, claim, lease));
  }
  if (lease.status?.phase !== "Bound" || !isBoundTo(lease, pod)) {
    writes.push(
      event(
        podTarget(pod),
        "Normal",
        "AddressAllocated",
        `net1 ${lease.spec?.ip} (${lease.spec?.mac}) from MacvlanSubnet ${lease.spec?.subnet}, ` +
          `lease ${lease.metadata?.name}${node ? ` on node ${node}` : ""}`,
      ),
    );
  }
  return writes;
}

const toIso = (t: Date | string | undefined, now: Date) =>
  t ? new Date(t).toISOString() : now.toISOString();

const tamperedEvent = (pod: PodSnapshot, claim: PodClaim, lease: MacvlanLease) =>
  event(
    podTarget(pod),
    "Warning",
    "AnnotationsIgnored",
    `the pod's annotations claim ${claim.ip} on ${claim.subnet}, but its lease ${lease.metadata?.name} ` +
      `holds ${lease.spec?.ip} on ${lease.spec?.subnet}: the lease is what counts`,
  );

/** What the guarded repair of a missing lease may rely on. */
export interface RepairContext {
  subnet?: MacvlanSubnet;
  namespace?: NamespaceInfo;
  /** The lease that holds the claimed address now, if any. */
  holder?: MacvlanLease;
  /** Whether the claimed address is in the subnet's pool and not cooling (allocator's view). */
  addressFree: boolean;
  /** Why the claimed MAC cannot be leased (not unicast, held by another lease), if it cannot. */
  macProblem?: string;
  now: Date;
}

/**
 * A pod with no lease of its own. If its annotations carry an address admission would have
 * granted this namespace (allowed subnet, free address in the pool, unused MAC) the lease is
 * made again (lost lease, restored etcd); anything else only gets a Warning Event: annotations
 * are input, never truth, so no one squats an address or another tenant's subnet by writing them.
 */
export function repairMissingLease(pod: PodSnapshot, claim: PodClaim, ctx: RepairContext): Write[] {
  if (pod.metadata?.deletionTimestamp || !pod.metadata?.uid) return [];
  const refusal = repairRefusal(claim, ctx);
  if (refusal) {
    return [
      event(
        podTarget(pod),
        "Warning",
        "AddressUnprotected",
        `${podId(pod)} claims ${claim.ip} on ${claim.subnet} but holds no lease, and none is made: ` +
          `${refusal}; delete and recreate the pod to get a leased address`,
      ),
    ];
  }
  const namespace = pod.metadata.namespace!;
  const lease = renderLease({
    subnet: claim.subnet,
    ip: claim.ip,
    mac: claim.mac!.toLowerCase(),
    pod: { namespace, name: pod.metadata.name, uid: pod.metadata.uid },
    node: pod.spec?.nodeName,
    owner: stickyOwnerOf(pod, namespace),
    fixed: true,
    token: tokenOf(pod),
  });
  return [
    { op: "createLease", lease, status: { phase: "Bound", reservedAt: ctx.now.toISOString() } },
    event(
      podTarget(pod),
      "Normal",
      "LeaseRepaired",
      `recreated the missing lease ${lease.metadata!.name} for ${claim.ip} on ${claim.subnet}`,
    ),
  ];
}

function repairRefusal(claim: PodClaim, ctx: RepairContext): string | undefined {
  if (!ctx.subnet?.spec) return `MacvlanSubnet "${claim.subnet}" does not exist`;
  if (ctx.subnet.metadata?.deletionTimestamp)
    return `MacvlanSubnet "${claim.subnet}" is being deleted`;
  if (!ctx.namespace || !namespaceAllowed(ctx.subnet, ctx.namespace))
    return `namespace "${ctx.namespace?.name ?? "?"}" may not use MacvlanSubnet "${claim.subnet}"`;
  if (ctx.holder) {
    const ref = ctx.holder.spec?.podRef;
    return `lease ${leaseName(claim.subnet, claim.ip)} belongs to ${ref?.namespace}/${ref?.name ?? "(being created)"}`;
  }
  if (!ctx.addressFree) return `${claim.ip} is not a free address of the subnet's pool`;
  return ctx.macProblem;
}
