// The watcher's periodic repair (and one at start). It reads one snapshot, lets
// lib/decide/repair.ts decide, and applies each object's writes on its own: a conflict or a
// failure on one object never stops the others, and a malformed object only gets a Warning Event.
import { Log } from "pepr";
import { describe } from "../../lib/k8s/errors";
import { KubePort, kfcPort } from "../k8s/port";
import { applyWrites } from "../k8s/apply";
import { scheduleExpiry } from "./lifecycle";
import { reconcileSubnet } from "../subnets/reconcile";
import { settings } from "../../lib/mode";
import { leasesMissingTheirPod, planResync, ResyncSnapshot } from "../../lib/decide/repair";
import { StatefulSetSnapshot } from "../../lib/decide/release";
import { MacvlanLease } from "../k8s/kinds";
import { recordResync } from "../metrics";

let running: Promise<void> | undefined;

/** Runs one resync; concurrent callers share the run in flight. */
export function resync(port: KubePort = kfcPort): Promise<void> {
  running ??= runResync(port).finally(() => (running = undefined));
  return running;
}

export function startResyncLoop(): void {
  void resync();
  setInterval(() => void resync(), settings.resyncSeconds * 1000).unref();
}

/** Reads what the repair decides over. Leases first: a pod list read afterwards holds every
 * live pod a lease can name. */
export async function readSnapshot(port: KubePort): Promise<ResyncSnapshot> {
  const leases = await port.listLeases();
  const [pods, subnets, namespaces] = await Promise.all([
    port.listPods(),
    port.listSubnets(),
    port.listNamespaces(),
  ]);
  const statefulSets = new Map<string, StatefulSetSnapshot>();
  const owners = new Set(
    leases.flatMap(l => (l.spec?.owner ? [`${l.spec.owner.namespace}/${l.spec.owner.name}`] : [])),
  );
  for (const key of owners) {
    const [ns, name] = key.split("/");
    const sts = await port.getStatefulSet(ns, name);
    if (sts) statefulSets.set(key, sts);
  }
  const confirmedGone = new Set<string>();
  for (const lease of leasesMissingTheirPod({ leases, pods })) {
    if (!(await podStillExists(port, lease))) confirmedGone.add(lease.metadata!.name!);
  }
  return {
    leases,
    pods,
    subnets,
    namespaces,
    statefulSets,
    confirmedGone,
    reservedTtlSeconds: settings.reservedTtlSeconds,
    poolMaxAgeSeconds: settings.poolMaxAgeSeconds,
    now: new Date(),
  };
}

async function podStillExists(port: KubePort, lease: MacvlanLease): Promise<boolean> {
  const ref = lease.spec?.podRef;
  if (!ref?.name) return false;
  const pod = await port.getPod(ref.namespace, ref.name);
  return !!pod && pod.metadata?.uid === ref.uid;
}

async function runResync(port: KubePort): Promise<void> {
  const started = Date.now();
  let snapshot: ResyncSnapshot;
  try {
    snapshot = await readSnapshot(port);
  } catch (e) {
    Log.error(`pepr-macvlan resync could not read the cluster: ${describe(e)}`);
    return;
  }
  const plan = planResync(snapshot);
  recordResync(snapshot, plan);
  let conflicts = 0;
  for (const group of plan.groups) {
    try {
      if ((await applyWrites(port, group)) === "conflict") conflicts++;
    } catch (e) {
      Log.warn(`resync: ${group[0]?.op} failed: ${describe(e)}`);
    }
  }
  for (const { lease, dueMs } of plan.expiries)
    scheduleExpiry(lease.metadata!.name!, dueMs - Date.now(), port);
  for (const subnet of snapshot.subnets) {
    await reconcileSubnet(subnet, { forceNads: true }).catch(e =>
      Log.warn(`resync: subnet ${subnet.metadata?.name}: ${describe(e)}`),
    );
  }
  if (plan.malformed.length)
    Log.warn(`resync skipped malformed objects: ${plan.malformed.join(", ")}`);
  Log.info(
    `pepr-macvlan resync: ${snapshot.leases.length} leases, ${snapshot.pods.length} pods, ` +
      `${plan.groups.length} repairs (${conflicts} changed meanwhile), ${Date.now() - started} ms`,
  );
}
