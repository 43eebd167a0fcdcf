// Lease lifecycle in the watcher: bind a Reserved lease to its pod, release it when the pod is
// gone (or hold it for a StatefulSet ordinal), expire Released leases after the reuse delay.
import { a, K8s, Log } from "pepr";
import { MacvlanLease, MacvlanSubnet } from "../k8s/kinds";
import { describe, getIfExists, isConflict } from "../k8s/errors";
import { watchCaches } from "../watch-caches";
import { emitEvent, podTarget } from "../k8s/events";
import {
  ANN_IP,
  ANN_MAC,
  ANN_RESERVATION,
  ANN_SUBNET,
  LABEL_POD_NAMESPACE,
  LABEL_SUBNET,
} from "../../lib/names";
import { leaseName } from "../../lib/ipam";
import { ownerStillWants, stickyOwnerOf } from "../../lib/owner";
import { DEFAULT_REUSE_DELAY_SECONDS, LeaseOwner, MacvlanLeaseStatus } from "../../crds/types";

export interface PodClaim {
  subnet: string;
  ip: string;
  mac?: string;
}

/** What a pod's annotations say it holds; undefined for pods the product did not address. */
export function claimOf(pod: a.Pod): PodClaim | undefined {
  const ann = pod.metadata?.annotations ?? {};
  const subnet = ann[ANN_SUBNET];
  const ip = ann[ANN_IP];
  if (!subnet || !ip || ip.includes(",")) return undefined;
  return { subnet, ip, mac: ann[ANN_MAC] };
}

const getLease = (name: string) => getIfExists(() => K8s(MacvlanLease).Get(name));

async function setStatus(lease: MacvlanLease, status: MacvlanLeaseStatus): Promise<void> {
  await K8s(MacvlanLease).PatchStatus({
    metadata: { name: lease.metadata!.name },
    status,
  } as MacvlanLease);
}

/** Compare-and-swap of spec fields: fails with a conflict when someone else changed the lease. */
async function patchSpec(
  lease: MacvlanLease,
  spec: Partial<NonNullable<MacvlanLease["spec"]>>,
): Promise<MacvlanLease> {
  return K8s(MacvlanLease, { name: lease.metadata!.name! }).Patch([
    { op: "test", path: "/metadata/resourceVersion", value: lease.metadata!.resourceVersion },
    // Only ever sets fields: a caller with an older view of the pod must not erase newer facts.
    ...Object.entries(spec)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => ({ op: "add" as const, path: `/spec/${k}`, value: v })),
  ]);
}

/** Bound to this pod, on the node it runs on (if scheduled): nothing to write. */
const isSettled = (lease: MacvlanLease, pod: a.Pod) =>
  isBoundTo(lease, pod) &&
  (!pod.spec?.nodeName || lease.spec?.node === pod.spec.nodeName) &&
  lease.status?.phase === "Bound";

/**
 * Admission stamps the lease and the pod with one reservation token: pods from one ReplicaSet
 * share a namespace and have no name at admission, so only the token tells whose lease it is.
 */
const reservedFor = (lease: MacvlanLease, pod: a.Pod) => {
  const token = lease.metadata?.annotations?.[ANN_RESERVATION];
  return !token || token === pod.metadata?.annotations?.[ANN_RESERVATION];
};

const isBoundTo = (lease: MacvlanLease, pod: a.Pod) =>
  lease.spec?.podRef?.uid === pod.metadata?.uid;

/** Pod created or updated: make sure its lease is Bound to it and records its node. */
export async function bindPodLease(pod: a.Pod): Promise<void> {
  const claim = claimOf(pod);
  if (!claim || pod.metadata?.deletionTimestamp) return;
  const name = leaseName(claim.subnet, claim.ip);
  const namespace = pod.metadata!.namespace!;
  const cached = watchCaches.leases.get(name);
  if (cached && isSettled(cached, pod)) return;
  const lease = await getLease(name);
  if (!lease) {
    await recreateLease(pod, claim);
    return;
  }
  const ref = lease.spec?.podRef;
  if (
    ref?.namespace !== namespace ||
    (ref.name && ref.name !== pod.metadata?.name && ref.uid) ||
    !reservedFor(lease, pod)
  ) {
    await emitEvent(
      podTarget(pod),
      "Warning",
      "AddressConflict",
      `lease ${name} for ${claim.ip} belongs to ${ref?.namespace}/${ref?.name ?? "?"}; this pod's address is not protected, recreate the pod`,
    );
    return;
  }
  const node = pod.spec?.nodeName;
  if (isSettled(lease, pod)) return;
  const owner = stickyOwnerOf(pod, namespace);
  try {
    await patchSpec(lease, {
      podRef: { namespace, name: pod.metadata!.name!, uid: pod.metadata!.uid! },
      node,
      ...(owner ? { owner } : {}),
    });
  } catch (e) {
    if (isConflict(e)) return bindPodLease(pod); // re-read and try again
    throw e;
  }
  const first = lease.status?.phase !== "Bound" || !isBoundTo(lease, pod);
  await setStatus(lease, {
    phase: "Bound",
    reservedAt: lease.status?.reservedAt ?? lease.metadata?.creationTimestamp?.toString(),
  });
  if (first) {
    await emitEvent(
      podTarget(pod),
      "Normal",
      "AddressAllocated",
      `net1 ${claim.ip} (${lease.spec?.mac}) from MacvlanSubnet ${claim.subnet}, lease ${name}${node ? ` on node ${node}` : ""}`,
    );
  }
}

/** A pod that carries an address but lost its lease (deleted by hand, restored etcd): lease it again. */
async function recreateLease(pod: a.Pod, claim: PodClaim): Promise<void> {
  const namespace = pod.metadata!.namespace!;
  const owner = stickyOwnerOf(pod, namespace);
  try {
    await K8s(MacvlanLease).Create({
      apiVersion: "macvlan.dev/v1alpha1",
      kind: "MacvlanLease",
      metadata: {
        name: leaseName(claim.subnet, claim.ip),
        labels: { [LABEL_SUBNET]: claim.subnet, [LABEL_POD_NAMESPACE]: namespace },
        annotations: { [ANN_RESERVATION]: pod.metadata?.annotations?.[ANN_RESERVATION] ?? "" },
      },
      spec: {
        subnet: claim.subnet,
        ip: claim.ip,
        mac: claim.mac ?? "",
        podRef: { namespace, name: pod.metadata!.name!, uid: pod.metadata!.uid! },
        node: pod.spec?.nodeName,
        ...(owner ? { owner } : {}),
      },
    } as MacvlanLease);
  } catch (e) {
    await emitEvent(
      podTarget(pod),
      "Warning",
      "AddressConflict",
      `could not restore the lease for ${claim.ip}: ${describe(e)}`,
    );
    return;
  }
  await emitEvent(
    podTarget(pod),
    "Normal",
    "LeaseRepaired",
    `recreated the missing lease for ${claim.ip} on ${claim.subnet}`,
  );
  const created = await getLease(leaseName(claim.subnet, claim.ip));
  if (created) await setStatus(created, { phase: "Bound", reservedAt: new Date().toISOString() });
}

/** Pod gone: release its lease, or keep it for the StatefulSet ordinal that will come back. */
export async function releasePodLease(pod: a.Pod): Promise<void> {
  const claim = claimOf(pod);
  if (!claim) return;
  // KFC's relist diffs a list against a cache the live watch kept filling, so under load it can
  // report a pod as deleted that was merely created after the list was taken. Releasing on such
  // a phantom would hand a live pod's address to another: confirm with a GET first.
  const live = await getIfExists(() =>
    K8s(a.Pod, { namespace: pod.metadata!.namespace! }).Get(pod.metadata!.name!),
  );
  if (live?.metadata?.uid === pod.metadata?.uid) {
    Log.warn(
      `ignored a delete event for ${pod.metadata?.namespace}/${pod.metadata?.name}: the pod still exists`,
    );
    return;
  }
  const lease = await getLease(leaseName(claim.subnet, claim.ip));
  if (!lease) return;
  if (!reservedFor(lease, pod)) return;
  // A lease already handed to a successor (sticky takeover) or still waiting for this pod's
  // binding has no uid of this pod; never release what another pod holds.
  if (lease.spec?.podRef?.uid && !isBoundTo(lease, pod)) return;
  if (
    !lease.spec?.podRef?.uid &&
    lease.spec?.podRef?.name &&
    lease.spec.podRef.name !== pod.metadata?.name
  )
    return;
  await releaseLease(
    lease,
    `pod ${pod.metadata?.namespace}/${pod.metadata?.name} was deleted`,
    podTarget(pod),
  );
}

export async function releaseLease(
  lease: MacvlanLease,
  why: string,
  target: Parameters<typeof emitEvent>[0],
): Promise<"held" | "released"> {
  const owner = lease.spec?.owner;
  if (owner && ownerStillWants(owner, await statefulSet(owner))) {
    if (lease.status?.phase !== "Reserved") {
      await setStatus(lease, { phase: "Reserved", reservedAt: new Date().toISOString() });
      await emitEvent(
        target,
        "Normal",
        "AddressHeld",
        `${lease.spec!.ip} stays reserved for StatefulSet ${owner.namespace}/${owner.name} ordinal ${owner.ordinal} (${why})`,
      );
    }
    return "held";
  }
  const subnet = await getSubnet(lease.spec!.subnet);
  const delay = subnet?.spec?.reuseDelaySeconds ?? DEFAULT_REUSE_DELAY_SECONDS;
  await setStatus(lease, { phase: "Released", releasedAt: new Date().toISOString() });
  scheduleExpiry(lease.metadata!.name!, delay * 1000);
  await emitEvent(
    target,
    "Normal",
    "AddressReleased",
    `${lease.spec!.ip} released (${why}); reusable after ${delay}s`,
  );
  return "released";
}

const statefulSet = (owner: LeaseOwner) =>
  getIfExists(() => K8s(a.StatefulSet, { namespace: owner.namespace }).Get(owner.name));

const getSubnet = (name: string) => getIfExists(() => K8s(MacvlanSubnet).Get(name));

const expiryTimers = new Map<string, NodeJS.Timeout>();

/** Deletes a Released lease once its reuse delay has passed; the resync catches any we miss. */
export function scheduleExpiry(name: string, afterMs: number): void {
  if (expiryTimers.has(name)) return;
  const timer = setTimeout(
    () => {
      expiryTimers.delete(name);
      void expireLease(name);
    },
    Math.max(0, afterMs),
  );
  timer.unref();
  expiryTimers.set(name, timer);
}

export async function expireLease(name: string): Promise<void> {
  try {
    const lease = await getLease(name);
    if (lease?.status?.phase !== "Released") return;
    await K8s(MacvlanLease).Delete(name);
  } catch (e) {
    Log.warn(`could not expire lease ${name}: ${describe(e)}`);
  }
}
