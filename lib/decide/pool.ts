// Per-replica pools of pre-leased addresses (docs/admission.md). An admission replica creates
// Reserved leases owned by itself ahead of demand and hands them out from memory, so a pod's
// admission makes no API request. What keeps that safe, decided here over snapshots:
//
// - A pool lease exists (its create, the name lock, succeeded) before it is handed out, and only
//   its owner's current process hands it out, once.
// - Its annotation carries sha256 of a secret token only the owner knows; the owner writes the
//   token on the pod it hands the lease to. The pod's annotation is therefore the proof of the
//   hand-out, even if the owner dies right after answering the webhook: the watcher binds a pool
//   lease to the pod that presents the preimage (in a namespace that opted in to the subnet, so
//   admission wrote the token, not the pod's author).
// - The watcher revokes (marks orphaned) pool leases of replicas that are gone, and of deleting
//   subnets; an owner drops a revoked lease from memory at once. An orphaned pool lease is
//   deleted only after the reserved-lease TTL has passed since the mark and no pod presents its
//   token: any pod the owner admitted before it saw the mark exists by then (webhook timeout
//   ≤ 30 s < TTL), so it is bound, not reclaimed.
import { createHash } from "node:crypto";
import { MacvlanLease, MacvlanLeaseStatus } from "../../crds/types";
import { leaseName } from "../ipam";
import { ANN_RESERVATION, LABEL_POD_NAMESPACE, LABEL_SUBNET } from "../names";
import { Precondition, Write, preconditionOf } from "./writes";

/** `<namespace>/<pod>/<boot id>` of the admission replica (process) that owns a pool lease. */
export const ANN_POOL_OWNER = "macvlan.dev/pool-owner";
/** sha256 (hex) of the token the owner will write on the pod it hands the lease to. */
export const ANN_POOL_COMMITMENT = "macvlan.dev/reservation-sha256";
/** Set by the watcher (or a restarted owner): the pool lease is revoked since this time. */
export const ANN_POOL_ORPHANED_AT = "macvlan.dev/pool-orphaned-at";

/**
 * Set by an admission replica asked for this address as a fixed IP: the owner returns (deletes)
 * the lease unless it has handed it out already, which only the owner knows (docs/admission.md).
 */
export const ANN_POOL_RETURN_REQUESTED = "macvlan.dev/pool-return-requested";

export interface ReplicaId {
  namespace: string;
  pod: string;
  boot: string;
}

export const ownerValue = (r: ReplicaId) => `${r.namespace}/${r.pod}/${r.boot}`;

export function parseOwner(value: string | undefined): ReplicaId | undefined {
  const parts = value?.split("/");
  if (!parts || parts.length !== 3 || parts.some(p => !p)) return undefined;
  return { namespace: parts[0], pod: parts[1], boot: parts[2] };
}

export const commitmentOf = (token: string) => createHash("sha256").update(token).digest("hex");

const annotationsOf = (lease: MacvlanLease) => lease.metadata?.annotations ?? {};

/** A pool lease: made by a replica for no pod yet (no podRef), with an owner and a commitment. */
export function isPoolLease(lease: MacvlanLease): boolean {
  const ann = annotationsOf(lease);
  return (
    !lease.spec?.podRef &&
    !!ann[ANN_POOL_OWNER] &&
    !!ann[ANN_POOL_COMMITMENT] &&
    lease.status?.phase !== "Released"
  );
}

export const isOrphaned = (lease: MacvlanLease) => !!annotationsOf(lease)[ANN_POOL_ORPHANED_AT];

export const isReturnRequested = (lease: MacvlanLease) =>
  !!annotationsOf(lease)[ANN_POOL_RETURN_REQUESTED];

/** A pool lease a fixed-IP request may ask back from its owner: live, not revoked. */
export const isReturnable = (lease: MacvlanLease) => isPoolLease(lease) && !isOrphaned(lease);

/** Asks the owner of a pool lease to give it back (compare-and-swap on what was read). */
export const returnRequestWrite = (lease: MacvlanLease, now: Date) =>
  markWrite(lease, ANN_POOL_RETURN_REQUESTED, now);

/** Sets a time-stamp annotation on a pool lease (compare-and-swap on what was read). */
function markWrite(lease: MacvlanLease, annotation: string, now: Date): Write {
  return {
    op: "patchLease",
    lease: preconditionOf(lease) as Precondition,
    spec: {},
    annotations: { ...annotationsOf(lease), [annotation]: now.toISOString() },
  };
}

/** Whether `token` (from a pod) is the secret this pool lease was committed to. */
export const tokenOpens = (lease: MacvlanLease, token: string | undefined) =>
  !!token &&
  isPoolLease(lease) &&
  annotationsOf(lease)[ANN_POOL_COMMITMENT] === commitmentOf(token);

/** A fresh pool lease of `owner` for `ip` (the token stays in the owner's memory). */
export function renderPoolLease(
  subnet: string,
  ip: string,
  mac: string,
  owner: ReplicaId,
  token: string,
): MacvlanLease {
  return {
    apiVersion: "macvlan.dev/v1alpha1",
    kind: "MacvlanLease",
    metadata: {
      name: leaseName(subnet, ip),
      labels: { [LABEL_SUBNET]: subnet },
      annotations: {
        [ANN_POOL_OWNER]: ownerValue(owner),
        [ANN_POOL_COMMITMENT]: commitmentOf(token),
      },
    },
    spec: { subnet, ip, mac, fixed: false },
  };
}

/** The lease as admission hands it out: the pool lease, stamped (in memory) for the pod. */
export function handedOut(lease: MacvlanLease, token: string, namespace: string): MacvlanLease {
  return {
    ...lease,
    metadata: {
      ...lease.metadata,
      annotations: { ...annotationsOf(lease), [ANN_RESERVATION]: token },
    },
    spec: { ...lease.spec!, podRef: { namespace } },
  };
}

/** Annotations and labels a pool lease carries once it belongs to a pod of `namespace`. */
export function claimedMetadata(lease: MacvlanLease, token: string, namespace: string) {
  const annotations: Record<string, string> = { ...annotationsOf(lease), [ANN_RESERVATION]: token };
  delete annotations[ANN_POOL_OWNER];
  delete annotations[ANN_POOL_ORPHANED_AT];
  delete annotations[ANN_POOL_RETURN_REQUESTED];
  const labels = { ...lease.metadata?.labels, [LABEL_POD_NAMESPACE]: namespace };
  return { annotations, labels };
}

/**
 * The owner records a hand-out whose pod the watcher has not bound yet (the pod may never come:
 * rejected later in admission): the lease becomes an ordinary Reserved lease of the namespace,
 * reclaimed after the TTL from now if no pod claims it. Status first, so the TTL never counts
 * from the pool lease's creation.
 */
export function recordWrites(
  lease: MacvlanLease,
  hand: { token: string; namespace: string; pod?: string },
  now: Date,
): Write[] {
  if (!isPoolLease(lease)) return [];
  const lock = preconditionOf(lease);
  const status: MacvlanLeaseStatus = { phase: "Reserved", reservedAt: now.toISOString() };
  return [
    { op: "setLeaseStatus", lease: lock, status },
    {
      op: "patchLease",
      lease: lock,
      spec: { podRef: { namespace: hand.namespace, ...(hand.pod ? { name: hand.pod } : {}) } },
      ...claimedMetadata(lease, hand.token, hand.namespace),
    },
  ];
}

/** Marks a pool lease revoked at `now` (compare-and-swap on what was read). */
export const orphanWrite = (lease: MacvlanLease, now: Date) =>
  markWrite(lease, ANN_POOL_ORPHANED_AT, now);

/** A restarted replica's leases from its earlier process: it cannot know which it handed out. */
export function staleIncarnationWrites(leases: MacvlanLease[], me: ReplicaId, now: Date): Write[] {
  return leases
    .filter(l => isPoolLease(l) && !isOrphaned(l))
    .filter(l => {
      const owner = parseOwner(annotationsOf(l)[ANN_POOL_OWNER]);
      return owner?.namespace === me.namespace && owner.pod === me.pod && owner.boot !== me.boot;
    })
    .map(l => orphanWrite(l, now));
}

export interface PoolLeaseContext {
  /** `namespace/name` of every pod in the cluster (admission replicas included). */
  livePods: ReadonlySet<string>;
  /** A live pod presents this lease's token (planPod binds it). */
  claimed: boolean;
  subnetDeleting: boolean;
  reservedTtlSeconds: number;
  /** Revoked once older than this even while its owner lives (lib/mode.ts poolMaxAgeSeconds). */
  maxAgeSeconds?: number;
  now: Date;
}

/**
 * The resync's decision for one pool lease: keep it while its owner lives, revoke it when the
 * owner is gone, the subnet is being deleted or it is older than the max age, delete it once
 * revoked for the TTL and unclaimed.
 */
export function planPoolLease(lease: MacvlanLease, ctx: PoolLeaseContext): Write[] {
  if (ctx.claimed) return [];
  const owner = parseOwner(annotationsOf(lease)[ANN_POOL_OWNER]);
  const orphanedAt = Date.parse(annotationsOf(lease)[ANN_POOL_ORPHANED_AT] ?? "");
  if (!isOrphaned(lease)) {
    const alive = !!owner && ctx.livePods.has(`${owner.namespace}/${owner.pod}`);
    const created = new Date(lease.metadata?.creationTimestamp ?? NaN).getTime();
    const tooOld =
      ctx.maxAgeSeconds !== undefined &&
      Number.isFinite(created) &&
      ctx.now.getTime() - created > ctx.maxAgeSeconds * 1000;
    return alive && !ctx.subnetDeleting && !tooOld ? [] : [orphanWrite(lease, ctx.now)];
  }
  // An unreadable mark counts from now: the safe side.
  const since = Number.isFinite(orphanedAt) ? orphanedAt : ctx.now.getTime();
  if (ctx.now.getTime() - since < ctx.reservedTtlSeconds * 1000) return [];
  return [{ op: "deleteLease", lease: preconditionOf(lease) }];
}

export interface PoolSizing {
  /** Free addresses of the subnet as this replica sees them (pool leases count as taken). */
  free: bigint;
  /** Hand-outs from this replica's pool in the last window. */
  recentHandouts: number;
  /** No hand-out for a long while: the pool returns everything (a subnet without leases can
   * change its CIDR again). */
  idle?: boolean;
  min: number;
  max: number;
}

/**
 * How many ready addresses a replica fills its pool to, and how many it keeps before returning
 * the surplus. Fill: the hand-outs of the last window (the rate), between min and max. Keep: up
 * to max, so a pool that filled for a burst is not deleted and re-created with every lull. Both
 * are at most 1/8 of what the replica sees free, so pools drain to zero as a subnet fills and
 * never starve another replica, and zero when idle.
 */
export function poolTarget(s: PoolSizing): { fill: number; keep: number } {
  if (s.idle) return { fill: 0, keep: 0 };
  const cap = s.free / 8n;
  const atMostCap = (n: number) => (cap < BigInt(n) ? Number(cap) : n);
  const fill = Math.max(s.min, Math.min(s.max, s.recentHandouts));
  return { fill: atMostCap(fill), keep: atMostCap(Math.max(fill, s.max)) };
}
