// The watcher's periodic repair (and one at start): leases without pods, pods without leases,
// stale reservations, expired releases, NADs and subnet status. Every repair emits an Event.
import { a, K8s, Log } from "pepr";
import { MacvlanLease, MacvlanSubnet } from "../k8s/kinds";
import { describe, getIfExists } from "../k8s/errors";
import { emitEvent, subnetTarget } from "../k8s/events";
import { bindPodLease, claimOf, releaseLease, scheduleExpiry } from "./lifecycle";
import { reconcileSubnet } from "../subnets/reconcile";
import { settings } from "../../lib/mode";
import { leaseName } from "../../lib/ipam";
import { DEFAULT_REUSE_DELAY_SECONDS } from "../../crds/types";

let running: Promise<void> | undefined;

/** Runs one resync; concurrent callers share the run in flight. */
export function resync(): Promise<void> {
  running ??= runResync().finally(() => (running = undefined));
  return running;
}

export function startResyncLoop(): void {
  void resync();
  setInterval(() => void resync(), settings.resyncSeconds * 1000).unref();
}

async function runResync(): Promise<void> {
  const started = Date.now();
  try {
    // Leases first, then pods: a lease bound to a pod was bound after that pod existed, so a
    // pod list read afterwards holds every live pod a lease can name.
    const leases = await K8s(MacvlanLease).Get();
    const [pods, subnets] = await Promise.all([K8s(a.Pod).Get(), K8s(MacvlanSubnet).Get()]);
    const podsByUid = new Map(pods.items.map(p => [p.metadata!.uid!, p]));
    const claims = new Map<string, a.Pod>();
    for (const pod of pods.items) {
      const claim = claimOf(pod);
      if (claim && !pod.metadata?.deletionTimestamp)
        claims.set(leaseName(claim.subnet, claim.ip), pod);
    }
    const reuseDelays = new Map(
      subnets.items.map(s => [
        s.metadata!.name!,
        s.spec?.reuseDelaySeconds ?? DEFAULT_REUSE_DELAY_SECONDS,
      ]),
    );
    const leaseNames = new Set(leases.items.map(l => l.metadata!.name!));
    for (const lease of leases.items) {
      await repairLease(lease, podsByUid, claims, reuseDelays).catch(e =>
        Log.warn(`resync: lease ${lease.metadata?.name}: ${describe(e)}`),
      );
    }
    // Pods that carry an address whose lease is missing or not yet bound to them.
    for (const [name, pod] of claims) {
      const lease = leases.items.find(l => l.metadata?.name === name);
      if (!leaseNames.has(name) || lease?.spec?.podRef?.uid !== pod.metadata?.uid) {
        await bindPodLease(pod).catch(e =>
          Log.warn(`resync: pod ${pod.metadata?.name}: ${describe(e)}`),
        );
      }
    }
    for (const subnet of subnets.items) {
      await reconcileSubnet(subnet).catch(e =>
        Log.warn(`resync: subnet ${subnet.metadata?.name}: ${describe(e)}`),
      );
    }
    Log.info(
      `pepr-macvlan resync: ${leases.items.length} leases, ${claims.size} addressed pods, ${Date.now() - started} ms`,
    );
  } catch (e) {
    Log.error(`pepr-macvlan resync failed: ${describe(e)}`);
  }
}

async function repairLease(
  lease: MacvlanLease,
  podsByUid: Map<string, a.Pod>,
  claims: Map<string, a.Pod>,
  reuseDelays: Map<string, number>,
): Promise<void> {
  const name = lease.metadata!.name!;
  const phase = lease.status?.phase;
  const subnetEvent = subnetTarget({ metadata: { name: lease.spec?.subnet } });
  if (phase === "Released") {
    const delayMs = Date.parse(lease.status?.releasedAt ?? "") - Date.now();
    const delaySeconds = reuseDelays.get(lease.spec!.subnet) ?? DEFAULT_REUSE_DELAY_SECONDS;
    scheduleExpiry(name, delayMs + delaySeconds * 1000);
    return;
  }
  const uid = lease.spec?.podRef?.uid;
  if (uid) {
    if (podsByUid.has(uid) || (await podStillExists(lease))) return;
    const gone = `its pod ${lease.spec?.podRef?.namespace}/${lease.spec?.podRef?.name} no longer exists`;
    const outcome = await releaseLease(lease, gone, subnetEvent);
    if (outcome === "released") {
      await emitEvent(
        subnetEvent,
        "Normal",
        "LeaseRepaired",
        `released lease ${name} (${lease.spec?.ip}): ${gone}`,
      );
    }
    return;
  }
  // Reserved and not yet bound: a pod may be about to claim it.
  const claimant = claims.get(name);
  if (claimant) {
    await bindPodLease(claimant);
    return;
  }
  if (lease.spec?.owner) {
    await releaseLease(lease, "no pod holds it", subnetEvent);
    return;
  }
  const since = Date.parse(
    lease.status?.reservedAt ?? lease.metadata?.creationTimestamp?.toString() ?? "",
  );
  if (Date.now() - since < settings.reservedTtlSeconds * 1000) return;
  await K8s(MacvlanLease).Delete(name);
  await emitEvent(
    subnetEvent,
    "Normal",
    "LeaseReclaimed",
    `reclaimed ${lease.spec?.ip} (lease ${name}): reserved for a pod in ${lease.spec?.podRef?.namespace} that never appeared (rejected after admission?)`,
  );
}

/** A last, direct look before releasing: list snapshots can miss a pod, a GET cannot. */
async function podStillExists(lease: MacvlanLease): Promise<boolean> {
  const ref = lease.spec?.podRef;
  if (!ref?.name) return false;
  const pod = await getIfExists(() => K8s(a.Pod, { namespace: ref.namespace }).Get(ref.name!));
  return !!pod && pod.metadata?.uid === ref.uid;
}
