// The resync, decided over one snapshot of leases, pods, subnets, namespaces and StatefulSets:
// leases without pods, pods without leases, stale reservations, superseded sticky leases and
// expired releases. One malformed object is reported (a Warning Event naming it) and skipped:
// it never stops the repair of the others.
import { MacvlanLease, MacvlanSubnet } from "../../crds/types";
import { DEFAULT_REUSE_DELAY_SECONDS } from "../../crds/types";
import { leaseName, parseUnicastMac } from "../ipam";
import { stickyKey } from "../owner";
import { ANN_RESERVATION } from "../names";
import { NamespaceInfo } from "../selection";
import { allocatorFromLeases } from "./allocators";
import { bindWrites, isSettled, repairMissingLease } from "./bind";
import { PodSnapshot, claimOf, leaseOfPod, leasesOfPod, tokenOf, unleasedClaims } from "./pods";
import { StatefulSetSnapshot, releaseWrites } from "./release";
import { isPoolLease, planPoolLease } from "./pool";
import { EventTarget, Write, event, podTarget, preconditionOf, subnetTarget } from "./writes";

export interface ResyncSnapshot {
  leases: MacvlanLease[];
  pods: PodSnapshot[];
  subnets: MacvlanSubnet[];
  namespaces: NamespaceInfo[];
  /** By `namespace/name`. */
  statefulSets: ReadonlyMap<string, StatefulSetSnapshot>;
  /** Leases whose pod a fresh GET found gone (the list may miss a pod, a GET cannot). */
  confirmedGone: ReadonlySet<string>;
  reservedTtlSeconds: number;
  /** Pool leases older than this are revoked even while their replica lives. */
  poolMaxAgeSeconds?: number;
  now: Date;
}

export interface ResyncPlan {
  /** One group per object; groups are applied independently (a conflict skips only its group). */
  groups: Write[][];
  /** Released leases to delete once due (epoch ms), with the precondition to delete them by. */
  expiries: { lease: MacvlanLease; dueMs: number }[];
  /** Objects that could not be read; each also has a Warning Event in `writes`. */
  malformed: string[];
}

const leaseTarget = (lease: MacvlanLease): EventTarget => ({
  apiVersion: "macvlan.dev/v1alpha1",
  kind: "MacvlanLease",
  name: lease.metadata?.name ?? "",
  uid: lease.metadata?.uid,
});

/** Bound leases whose pod is not in the pod list: confirm with a GET before releasing. */
export function leasesMissingTheirPod(s: Pick<ResyncSnapshot, "leases" | "pods">): MacvlanLease[] {
  const uids = new Set(s.pods.map(p => p.metadata?.uid));
  return s.leases.filter(
    l => l.status?.phase !== "Released" && l.spec?.podRef?.uid && !uids.has(l.spec.podRef.uid),
  );
}

export function planResync(s: ResyncSnapshot): ResyncPlan {
  const plan: ResyncPlan = { groups: [], expiries: [], malformed: [] };
  const ctx = new ResyncContext(s);
  for (const lease of s.leases) {
    guard(plan, leaseTarget(lease), `MacvlanLease ${lease.metadata?.name}`, () =>
      planLease(lease, ctx, plan.expiries),
    );
  }
  for (const pod of s.pods) {
    guard(plan, podTarget(pod), `pod ${pod.metadata?.namespace}/${pod.metadata?.name}`, () =>
      planPod(pod, ctx),
    );
  }
  return plan;
}

function guard(plan: ResyncPlan, target: EventTarget, what: string, step: () => Write[]): void {
  try {
    const writes = step();
    if (writes.length) plan.groups.push(writes);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    plan.malformed.push(what);
    plan.groups.push([
      event(
        target,
        "Warning",
        "MalformedObject",
        `pepr-macvlan skipped ${what} in its repair: ${why}`,
      ),
    ]);
  }
}

/** The lease a pod's annotations name; undefined when they name none (or a malformed address:
 * planPod reports that pod on its own). */
function claimedLeaseName(pod: PodSnapshot): string | undefined {
  const claim = claimOf(pod);
  try {
    return claim && leaseName(claim.subnet, claim.ip);
  } catch {
    return undefined;
  }
}

/** Indexes the snapshot once. */
class ResyncContext {
  readonly podsByUid = new Map<string, PodSnapshot>();
  readonly podsByToken = new Map<string, PodSnapshot[]>();
  readonly subnets = new Map<string, MacvlanSubnet>();
  readonly namespaces = new Map<string, NamespaceInfo>();
  readonly leasesByToken = new Map<string, MacvlanLease[]>();
  readonly leasesByUid = new Map<string, MacvlanLease>();
  readonly leasesByName = new Map<string, MacvlanLease>();
  readonly superseded = new Set<string>();
  /** Pods by the lease name their annotations claim (pool leases are found this way). */
  readonly podsByClaim = new Map<string, PodSnapshot[]>();
  readonly livePods = new Set<string>();

  constructor(readonly s: ResyncSnapshot) {
    for (const p of s.pods) {
      this.livePods.add(`${p.metadata?.namespace}/${p.metadata?.name}`);
      const name = claimedLeaseName(p);
      if (name) this.podsByClaim.set(name, [...(this.podsByClaim.get(name) ?? []), p]);
      if (p.metadata?.uid) this.podsByUid.set(p.metadata.uid, p);
      const token = tokenOf(p);
      if (token) this.podsByToken.set(token, [...(this.podsByToken.get(token) ?? []), p]);
    }
    for (const sub of s.subnets) this.subnets.set(sub.metadata!.name!, sub);
    for (const ns of s.namespaces) this.namespaces.set(ns.name, ns);
    for (const l of s.leases) {
      this.leasesByName.set(l.metadata?.name ?? "", l);
      if (l.status?.phase === "Released") continue;
      const token = l.metadata?.annotations?.[ANN_RESERVATION];
      if (token) this.leasesByToken.set(token, [...(this.leasesByToken.get(token) ?? []), l]);
      if (l.spec?.podRef?.uid) this.leasesByUid.set(l.spec.podRef.uid, l);
    }
    this.findSuperseded();
  }

  /** Of several live leases of one sticky owner in one family, the one bound to a live pod (or the newest) wins. */
  private findSuperseded(): void {
    const byOwner = new Map<string, MacvlanLease[]>();
    for (const l of this.s.leases) {
      if (!l.spec?.owner || l.status?.phase === "Released") continue;
      const key = stickyKey(l.spec.owner, l.spec.ip);
      byOwner.set(key, [...(byOwner.get(key) ?? []), l]);
    }
    const rank = (l: MacvlanLease) =>
      (this.podsByUid.has(l.spec?.podRef?.uid ?? "") ? 1e15 : 0) +
      (Date.parse(String(l.metadata?.creationTimestamp ?? "")) || 0);
    for (const group of byOwner.values()) {
      if (group.length < 2) continue;
      const keep = group.reduce((a, b) => (rank(b) > rank(a) ? b : a));
      for (const l of group) if (l !== keep) this.superseded.add(l.metadata!.name!);
    }
  }

  reuseDelay(subnet: string): number {
    return this.subnets.get(subnet)?.spec?.reuseDelaySeconds ?? DEFAULT_REUSE_DELAY_SECONDS;
  }

  releaseContext(lease: MacvlanLease) {
    const owner = lease.spec?.owner;
    return {
      statefulSet: owner ? this.s.statefulSets.get(`${owner.namespace}/${owner.name}`) : undefined,
      superseded: this.superseded.has(lease.metadata!.name!),
      reuseDelaySeconds: this.reuseDelay(lease.spec!.subnet),
      now: this.s.now,
    };
  }

  candidatesFor(pod: PodSnapshot): MacvlanLease[] {
    const byUid = this.leasesByUid.get(pod.metadata?.uid ?? "");
    const claim = claimOf(pod);
    const claimed = claim && this.leasesByName.get(leaseName(claim.subnet, claim.ip));
    return [
      ...(byUid ? [byUid] : []),
      ...(this.leasesByToken.get(tokenOf(pod)) ?? []),
      ...(claimed && isPoolLease(claimed) ? [claimed] : []),
    ];
  }

  namespaceOf(pod: PodSnapshot): NamespaceInfo | undefined {
    return this.namespaces.get(pod.metadata?.namespace ?? "");
  }
}

function planLease(
  lease: MacvlanLease,
  ctx: ResyncContext,
  expiries: ResyncPlan["expiries"],
): Write[] {
  const spec = lease.spec;
  if (!spec?.subnet || !spec.ip) throw new Error("spec.subnet and spec.ip are required");
  const name = lease.metadata!.name!;
  const target = subnetTarget({ metadata: { name: spec.subnet } });
  // The operator's conflict pass owns these (lib/decide/conflicts.ts): no pod, nothing to repair.
  if (lease.status?.phase === "Conflict") return [];
  if (lease.status?.phase === "Released") {
    const releasedMs = Date.parse(lease.status.releasedAt ?? "");
    const from = Number.isFinite(releasedMs) ? releasedMs : ctx.s.now.getTime();
    expiries.push({ lease, dueMs: from + ctx.reuseDelay(spec.subnet) * 1000 });
    return [];
  }
  if (isPoolLease(lease)) return planPool(lease, ctx);
  const uid = spec.podRef?.uid;
  if (uid) {
    if (ctx.podsByUid.has(uid) && !ctx.superseded.has(name)) return [];
    if (!ctx.podsByUid.has(uid) && !ctx.s.confirmedGone.has(name)) return []; // not proven gone
    const why = ctx.superseded.has(name)
      ? `StatefulSet ${spec.owner?.namespace}/${spec.owner?.name} ordinal ${spec.owner?.ordinal} holds a newer lease`
      : `its pod ${spec.podRef?.namespace}/${spec.podRef?.name} no longer exists`;
    const { outcome, writes } = releaseWrites(lease, why, target, ctx.releaseContext(lease));
    if (outcome !== "released") return writes;
    return [
      ...writes,
      event(target, "Normal", "LeaseRepaired", `released lease ${name} (${spec.ip}): ${why}`),
    ];
  }
  if (hasClaimant(lease, ctx)) return []; // planPod binds it
  if (spec.owner) {
    const why = ctx.superseded.has(name)
      ? "the StatefulSet holds a newer lease"
      : "no pod holds it";
    return releaseWrites(lease, why, target, ctx.releaseContext(lease)).writes;
  }
  const since = Date.parse(
    String(lease.status?.reservedAt ?? lease.metadata?.creationTimestamp ?? ""),
  );
  if (Number.isFinite(since) && ctx.s.now.getTime() - since < ctx.s.reservedTtlSeconds * 1000)
    return [];
  return [
    { op: "deleteLease", lease: preconditionOf(lease) },
    event(
      target,
      "Normal",
      "LeaseReclaimed",
      `reclaimed ${spec.ip} (lease ${name}): reserved for a pod in ${spec.podRef?.namespace} that never appeared (rejected after admission?)`,
    ),
  ];
}

/** A live pod carries this Reserved lease's token: binding, not reclaiming, is due. */
function hasClaimant(lease: MacvlanLease, ctx: ResyncContext): boolean {
  const token = lease.metadata?.annotations?.[ANN_RESERVATION];
  const pods = isPoolLease(lease)
    ? (ctx.podsByClaim.get(lease.metadata?.name ?? "") ?? [])
    : (token && ctx.podsByToken.get(token)) || [];
  return pods.some(
    p => !p.metadata?.deletionTimestamp && leaseOfPod(p, [lease], ctx.namespaceOf(p)) === lease,
  );
}

/** A replica's pool lease: kept while its owner lives, else revoked, then reclaimed. */
function planPool(lease: MacvlanLease, ctx: ResyncContext): Write[] {
  const spec = lease.spec!;
  const writes = planPoolLease(lease, {
    livePods: ctx.livePods,
    claimed: hasClaimant(lease, ctx),
    subnetDeleting: !!ctx.subnets.get(spec.subnet)?.metadata?.deletionTimestamp,
    reservedTtlSeconds: ctx.s.reservedTtlSeconds,
    maxAgeSeconds: ctx.s.poolMaxAgeSeconds,
    now: ctx.s.now,
  });
  if (!writes.some(w => w.op === "deleteLease")) return writes;
  const target = subnetTarget({ metadata: { name: spec.subnet } });
  return [
    ...writes,
    event(
      target,
      "Normal",
      "LeaseReclaimed",
      `reclaimed ${spec.ip} (lease ${lease.metadata?.name}): pre-leased by an admission replica that is gone, and no pod holds it`,
    ),
  ];
}

function planPod(pod: PodSnapshot, ctx: ResyncContext): Write[] {
  if (pod.metadata?.deletionTimestamp || !pod.metadata?.uid) return [];
  const leases = leasesOfPod(pod, ctx.candidatesFor(pod), ctx.namespaceOf(pod));
  const writes = leases.flatMap(l => (isSettled(l, pod) ? [] : bindWrites(pod, l, ctx.s.now)));
  // A claim with no lease of its own (a dual-stack pod claims two): the guarded repair.
  for (const claim of unleasedClaims(pod, leases)) {
    const subnet = ctx.subnets.get(claim.subnet);
    const holder = ctx.leasesByName.get(leaseName(claim.subnet, claim.ip));
    writes.push(
      ...repairMissingLease(pod, claim, {
        subnet,
        namespace: ctx.namespaces.get(pod.metadata.namespace ?? ""),
        holder,
        addressFree: !!subnet?.spec && addressFree(subnet, ctx.s.leases, claim.ip, ctx.s.now),
        macProblem: macProblem(claim.mac, claim.subnet, ctx.s.leases),
        now: ctx.s.now,
      }),
    );
  }
  return writes;
}

function addressFree(
  subnet: MacvlanSubnet,
  leases: MacvlanLease[],
  ip: string,
  now: Date,
): boolean {
  const own = leases.filter(l => l.spec?.subnet === subnet.metadata?.name);
  const state = allocatorFromLeases(subnet, own).stateOf(ip, now);
  return state === "free" || state === "reusable";
}

/** Why a claimed MAC cannot be leased in the subnet, if it cannot. */
export function macProblem(
  mac: string | undefined,
  subnet: string,
  leases: MacvlanLease[],
): string | undefined {
  if (!mac) return "it carries no macvlan.dev/mac";
  const parsed = parseUnicastMac(mac);
  if (!parsed.ok) return parsed.error;
  const holder = leases.find(
    l => l.spec?.subnet === subnet && l.spec.mac?.toLowerCase() === parsed.mac,
  );
  return holder ? `MAC ${parsed.mac} is held by lease ${holder.metadata?.name}` : undefined;
}
