// Lease lifecycle in the watcher: bind admission's lease to its pod, release it when the pod is
// gone (or hold it for a StatefulSet ordinal), expire Released leases after the reuse delay.
// The decisions are lib/decide's; this file reads fresh state, calls them and applies the writes.
import { a, Log } from "pepr";
import { MacvlanLease } from "../k8s/kinds";
import { describe } from "../../lib/k8s/errors";
import { cachedLeasesFor, watchCaches } from "../watch-caches";
import { KubePort, kfcPort } from "../k8s/port";
import { applyWrites, decideAndApply } from "../k8s/apply";
import { leaseName } from "../../lib/ipam";
import { bindWrites, isSettled, repairMissingLease } from "../../lib/decide/bind";
import { podGoneWrites } from "../../lib/decide/release";
import { macProblem } from "../../lib/decide/repair";
import { allocatorFromLeases } from "../../lib/decide/allocators";
import {
  PodClaim,
  claimsOf,
  isLeaseOf,
  leasesOfPod,
  tokenOf,
  unleasedClaims,
} from "../../lib/decide/pods";
import { podTarget, preconditionOf } from "../../lib/decide/writes";
import { DEFAULT_REUSE_DELAY_SECONDS } from "../../crds/types";
import { isPoolLease } from "../../lib/decide/pool";

/** Names of the leases that may be this pod's: cached by uid or token, and the ones it claims. */
function candidateNames(pod: a.Pod): string[] {
  const names = new Set<string>();
  for (const lease of cachedLeasesFor(pod)) {
    if (lease.spec?.podRef?.uid === pod.metadata?.uid || isLeaseOf(lease, pod))
      names.add(lease.metadata!.name!);
  }
  for (const claim of claimsOf(pod)) names.add(leaseName(claim.subnet, claim.ip));
  return [...names];
}

/** Fresh reads of the candidates: every ownership decision starts from the API server. */
async function freshCandidates(port: KubePort, pod: a.Pod): Promise<MacvlanLease[]> {
  const leases = await Promise.all(candidateNames(pod).map(n => port.getLease(n)));
  return leases.filter((l): l is MacvlanLease => !!l);
}

/**
 * Pod created or updated: make sure admission's lease (both, dual stack) is Bound to it and
 * records its node; a claimed address without a lease of its own gets the guarded repair.
 */
export async function bindPodLease(pod: a.Pod, port: KubePort = kfcPort): Promise<void> {
  const claims = claimsOf(pod);
  if (pod.metadata?.deletionTimestamp || (!tokenOf(pod) && !claims.length)) return;
  const cached = leasesOfPod(pod, cachedLeasesFor(pod));
  const expected = Math.max(1, claims.length);
  if (cached.length >= expected && cached.every(l => isSettled(l, pod))) return; // most pod events
  let bound: string[] = [];
  const result = await decideAndApply(port, async () => {
    const candidates = await freshCandidates(port, pod);
    // A replica's pool lease is the pod's only if its namespace opted in (lib/decide/pods.ts).
    const namespace = candidates.some(isPoolLease)
      ? await port.getNamespace(pod.metadata!.namespace!)
      : undefined;
    const leases = leasesOfPod(pod, candidates, namespace);
    bound = leases.map(l => l.metadata!.name!);
    const repairs = await repairWrites(port, pod, unleasedClaims(pod, leases));
    return [...leases.flatMap(l => bindWrites(pod, l, new Date())), ...repairs];
  });
  // The Service twins read Bound leases from the cache: let them see these now.
  if (result !== "done") return;
  for (const name of bound) {
    const fresh = await port.getLease(name);
    if (fresh) watchCaches.leases.upsert(fresh);
  }
}

/** Claims without a lease of their own: the guarded repair (lib/decide/bind.ts repairMissingLease). */
async function repairWrites(port: KubePort, pod: a.Pod, claims: PodClaim[]) {
  if (!claims.length) return [];
  const namespaces = await port.listNamespaces();
  const namespace = namespaces.find(ns => ns.name === pod.metadata?.namespace);
  const now = new Date();
  const writes = await Promise.all(
    claims.map(async claim => {
      const [subnet, holder] = await Promise.all([
        port.getSubnet(claim.subnet),
        port.getLease(leaseName(claim.subnet, claim.ip)),
      ]);
      const leases = watchCaches.leases.list().filter(l => l.spec?.subnet === claim.subnet);
      let addressFree = false;
      if (subnet?.spec) {
        const state = allocatorFromLeases(subnet, leases).stateOf(claim.ip, now);
        addressFree = state === "free" || state === "reusable";
      }
      return repairMissingLease(pod, claim, {
        subnet,
        namespace,
        holder,
        addressFree,
        macProblem: macProblem(claim.mac, claim.subnet, leases),
        now,
      });
    }),
  );
  return writes.flat();
}

/** Pod gone: release admission's leases for it, or keep them for the StatefulSet ordinal. */
export async function releasePodLease(pod: a.Pod, port: KubePort = kfcPort): Promise<void> {
  if (!tokenOf(pod) && !claimsOf(pod).length) return;
  await decideAndApply(port, async () => {
    const leases = leasesOfPod(pod, await freshCandidates(port, pod));
    if (!leases.length) return [];
    // KFC's relist can report a pod deleted that lives: confirm with a GET first.
    const live = await port.getPod(pod.metadata!.namespace!, pod.metadata!.name!);
    if (live?.metadata?.uid === pod.metadata?.uid) {
      Log.warn(
        `ignored a delete event for ${pod.metadata?.namespace}/${pod.metadata?.name}: the pod still exists`,
      );
      return [];
    }
    const writes = await Promise.all(leases.map(l => goneWrites(port, pod, l, live)));
    return writes.flat();
  });
}

/** The release of one of the gone pod's leases (both of a dual-stack pod go together). */
async function goneWrites(port: KubePort, pod: a.Pod, lease: MacvlanLease, live?: a.Pod) {
  const owner = lease.spec?.owner;
  const [statefulSet, subnet] = await Promise.all([
    owner ? port.getStatefulSet(owner.namespace, owner.name) : undefined,
    port.getSubnet(lease.spec!.subnet),
  ]);
  const ctx = {
    statefulSet,
    reuseDelaySeconds: subnet?.spec?.reuseDelaySeconds ?? DEFAULT_REUSE_DELAY_SECONDS,
    now: new Date(),
  };
  const writes = podGoneWrites(pod, lease, live, ctx, podTarget(pod));
  const released = writes.some(w => w.op === "setLeaseStatus" && w.status.phase === "Released");
  if (released) scheduleExpiry(lease.metadata!.name!, ctx.reuseDelaySeconds * 1000);
  return writes;
}

const expiryTimers = new Map<string, NodeJS.Timeout>();

/** Deletes a Released lease once its reuse delay has passed; the resync catches any we miss. */
export function scheduleExpiry(name: string, afterMs: number, port: KubePort = kfcPort): void {
  if (expiryTimers.has(name)) return;
  const timer = setTimeout(
    () => {
      expiryTimers.delete(name);
      void expireLease(name, port);
    },
    Math.max(0, afterMs),
  );
  timer.unref();
  expiryTimers.set(name, timer);
}

/** Deletes the lease if it is still Released, by a precondition on what was read. */
export async function expireLease(name: string, port: KubePort = kfcPort): Promise<void> {
  try {
    const lease = await port.getLease(name);
    if (lease?.status?.phase !== "Released") return;
    await applyWrites(port, [{ op: "deleteLease", lease: preconditionOf(lease) }]);
  } catch (e) {
    Log.warn(`could not expire lease ${name}: ${describe(e)}`);
  }
}
