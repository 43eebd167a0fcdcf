// Keeps a subnet's NADs, status and finalizer true to its leases (watcher side).
import { a, K8s, Log, PeprMutateRequest } from "pepr";
import { MacvlanLease, MacvlanSubnet } from "../k8s/kinds";
import { getIfExists } from "../../lib/k8s/errors";
import { emitEvent } from "../k8s/events";
import { ensureNad, pruneNads } from "./nads";
import { kfcPort } from "../k8s/port";
import { applyWrites } from "../k8s/apply";
import { preconditionOf, subnetTarget } from "../../lib/decide/writes";
import { recordSubnetCounts } from "../metrics";
import { LABEL_POD_NAMESPACE, LABEL_SUBNET, SUBNET_FINALIZER } from "../../lib/names";
import { countStatus } from "../../lib/decide/subnet-status";
import { planConflictLeases } from "../../lib/decide/conflicts";

/** Admission: every subnet carries our finalizer, so deletion waits for its leases. */
export function addFinalizer(req: PeprMutateRequest<MacvlanSubnet>): void {
  if (req.Raw.metadata?.deletionTimestamp) return;
  const finalizers = req.Raw.metadata?.finalizers ?? [];
  if (!finalizers.includes(SUBNET_FINALIZER))
    req.Merge({ metadata: { finalizers: [...finalizers, SUBNET_FINALIZER] } });
}

export async function reconcileSubnetByName(
  name: string,
  opts: { forceNads?: boolean } = {},
): Promise<void> {
  const subnet = await getIfExists(() => K8s(MacvlanSubnet).Get(name));
  if (subnet) await reconcileSubnet(subnet, opts);
}

/** `forceNads`: apply every NAD even where the cache says it exists (the resync repairs by it). */
export async function reconcileSubnet(
  subnet: MacvlanSubnet,
  opts: { forceNads?: boolean } = {},
): Promise<void> {
  const name = subnet.metadata!.name!;
  const leases = (await K8s(MacvlanLease).WithLabel(LABEL_SUBNET, name).Get()).items;
  if (subnet.metadata?.deletionTimestamp) {
    await finishDeletion(subnet, leases);
    return;
  }
  const users = new Set(
    leases.map(l => l.metadata?.labels?.[LABEL_POD_NAMESPACE] ?? l.spec?.podRef?.namespace ?? ""),
  );
  const labelled = await K8s(a.Namespace).WithLabel(LABEL_SUBNET, name).Get();
  for (const ns of labelled.items) users.add(ns.metadata!.name!);
  users.delete("");
  for (const ns of users) {
    if (!(await namespaceExists(ns))) continue;
    await ensureNad(subnet, ns, { force: opts.forceNads });
  }
  const removed = await pruneNads(name, users);
  if (removed.length) {
    await emitEvent(
      subnetTarget(subnet),
      "Normal",
      "NadRemoved",
      `removed the unused NAD from ${removed.join(", ")}`,
    );
  }
  await recordConflicts(subnet, leases);
  await writeStatus(subnet, leases);
}

/** Conflict leases for the addresses the agents find in use on the LAN (lib/decide/conflicts.ts). */
async function recordConflicts(subnet: MacvlanSubnet, leases: MacvlanLease[]): Promise<void> {
  const groups = planConflictLeases(subnet, leases);
  for (const g of groups) await applyWrites(kfcPort, g);
  // Each write changes a lease, whose watch event schedules another reconcile with fresh counts.
}

async function namespaceExists(name: string): Promise<boolean> {
  const ns = await getIfExists(() => K8s(a.Namespace).Get(name));
  return !!ns && !ns.metadata?.deletionTimestamp;
}

async function writeStatus(subnet: MacvlanSubnet, leases: MacvlanLease[]): Promise<void> {
  const status = countStatus(subnet, leases);
  recordSubnetCounts(subnet.metadata!.name!, status.allocated ?? 0, BigInt(status.free ?? "0"));
  const old = subnet.status;
  const oldReady = old?.conditions?.find(c => c.type === "Ready");
  const newReady = status.conditions![0];
  if (
    old?.observedGeneration === status.observedGeneration &&
    old?.total === status.total &&
    old?.allocated === status.allocated &&
    oldReady?.status === newReady.status &&
    oldReady?.message === newReady.message
  ) {
    return;
  }
  await K8s(MacvlanSubnet).PatchStatus({
    metadata: { name: subnet.metadata!.name },
    status,
  } as MacvlanSubnet);
  if (oldReady?.reason !== newReady.reason) {
    await emitEvent(
      subnetTarget(subnet),
      newReady.status === "True" ? "Normal" : "Warning",
      newReady.reason,
      newReady.message,
    );
  }
}

async function finishDeletion(subnet: MacvlanSubnet, leases: MacvlanLease[]): Promise<void> {
  const name = subnet.metadata!.name!;
  const finalizers = subnet.metadata?.finalizers ?? [];
  if (!finalizers.includes(SUBNET_FINALIZER)) return;
  // A released address of a subnet that is going away will never be handed out again: its
  // reuse delay protects nothing, so its lease goes now.
  // Nor do Conflict leases (no pod holds them).
  const gone = (l: MacvlanLease) =>
    l.status?.phase === "Released" || l.status?.phase === "Conflict";
  for (const lease of leases.filter(gone)) {
    await applyWrites(kfcPort, [{ op: "deleteLease", lease: preconditionOf(lease) }]);
  }
  leases = leases.filter(l => !gone(l));
  if (leases.length > 0) {
    const message = `waiting for ${leases.length} lease(s) to be released before deletion (kubectl get mvl -l ${LABEL_SUBNET}=${name})`;
    const ready = subnet.status?.conditions?.find(c => c.type === "Ready");
    if (ready?.message !== message) {
      await K8s(MacvlanSubnet).PatchStatus({
        metadata: { name },
        status: {
          conditions: [
            {
              type: "Ready",
              status: "False",
              reason: "Terminating",
              message,
              lastTransitionTime: new Date().toISOString(),
              observedGeneration: subnet.metadata?.generation,
            },
          ],
        },
      } as MacvlanSubnet);
      await emitEvent(subnetTarget(subnet), "Normal", "Terminating", message);
    }
    return;
  }
  await pruneNads(name, new Set());
  const index = finalizers.indexOf(SUBNET_FINALIZER);
  await K8s(MacvlanSubnet, { name }).Patch([
    { op: "test", path: `/metadata/finalizers/${index}`, value: SUBNET_FINALIZER },
    { op: "remove", path: `/metadata/finalizers/${index}` },
  ]);
  Log.info(`subnet ${name}: no leases left, finalizer removed`);
}
