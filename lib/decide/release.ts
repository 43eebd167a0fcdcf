// Releasing: a pod is gone, so its lease goes to Released (reusable after the subnet's reuse
// delay) — or stays Reserved for the StatefulSet ordinal that will come back.
import { LeaseOwner, MacvlanLease } from "../../crds/types";
import { ownerStillWants } from "../owner";
import { PodSnapshot, isLeaseOf } from "./pods";
import { EventTarget, Write, event, preconditionOf } from "./writes";

/** The parts of a StatefulSet that decide whether it still wants an ordinal. */
export interface StatefulSetSnapshot {
  metadata?: { uid?: string; deletionTimestamp?: Date | string };
  spec?: { replicas?: number };
}

export interface ReleaseContext {
  /** The StatefulSet the lease's owner names, read fresh (undefined: it no longer exists). */
  statefulSet?: StatefulSetSnapshot;
  /** Another lease already carries this lease's sticky owner (the StatefulSet moved subnet). */
  superseded?: boolean;
  reuseDelaySeconds: number;
  now: Date;
}

export type ReleaseOutcome = "held" | "released" | "unchanged";

/** Release (or hold) `lease`; `why` and `target` say in the Event what happened and where. */
export function releaseWrites(
  lease: MacvlanLease,
  why: string,
  target: EventTarget,
  ctx: ReleaseContext,
): { outcome: ReleaseOutcome; writes: Write[] } {
  if (lease.status?.phase === "Released") return { outcome: "unchanged", writes: [] };
  const owner = lease.spec?.owner;
  const lock = preconditionOf(lease);
  if (owner && !ctx.superseded && ownerStillWants(owner, ctx.statefulSet)) {
    if (lease.status?.phase === "Reserved" && !lease.spec?.podRef?.uid)
      return { outcome: "unchanged", writes: [] };
    return { outcome: "held", writes: holdWrites(lease, owner, why, target, ctx.now) };
  }
  const ip = lease.spec?.ip;
  return {
    outcome: "released",
    writes: [
      {
        op: "setLeaseStatus",
        lease: lock,
        status: { ...lease.status, phase: "Released", releasedAt: ctx.now.toISOString() },
      },
      event(
        target,
        "Normal",
        "AddressReleased",
        `${ip} released (${why}); reusable after ${ctx.reuseDelaySeconds}s`,
      ),
    ],
  };
}

/** The ordinal keeps its address: the lease waits, unbound, for the pod's successor. */
function holdWrites(
  lease: MacvlanLease,
  owner: LeaseOwner,
  why: string,
  target: EventTarget,
  now: Date,
): Write[] {
  const lock = preconditionOf(lease);
  return [
    { op: "patchLease", lease: lock, spec: { podRef: { namespace: owner.namespace } } },
    {
      op: "setLeaseStatus",
      lease: lock,
      status: { phase: "Reserved", reservedAt: now.toISOString() },
    },
    event(
      target,
      "Normal",
      "AddressHeld",
      `${lease.spec!.ip} stays reserved for StatefulSet ${owner.namespace}/${owner.name} ordinal ${owner.ordinal} (${why})`,
    ),
  ];
}

/**
 * A pod was reported deleted. `live` is a fresh read of the pod by name: KFC's relist can report
 * a pod deleted that lives, and releasing then would hand a live pod's address to another.
 * Only the lease admission made for this very pod is released.
 */
export function podGoneWrites(
  pod: PodSnapshot,
  lease: MacvlanLease | undefined,
  live: PodSnapshot | undefined,
  ctx: ReleaseContext,
  target: EventTarget,
): Write[] {
  if (!lease || !isLeaseOf(lease, pod)) return [];
  if (live && live.metadata?.uid === pod.metadata?.uid) return [];
  const why = `pod ${pod.metadata?.namespace}/${pod.metadata?.name} was deleted`;
  return releaseWrites(lease, why, target, ctx).writes;
}
