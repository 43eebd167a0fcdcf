// Keeps a subnet's NADs, status and finalizer true to its leases (watcher side). Every request
// goes through the shared transport, which retries transient failures (lib/k8s/retry.ts); what
// still fails is re-driven by the resync (capabilities/leases/resync.ts reconciles every subnet).
import { a, Log, PeprMutateRequest } from "pepr";
import { MacvlanLease, MacvlanSubnet } from "../k8s/kinds";
import { getIfExists } from "../../lib/k8s/errors";
import { emitEvent } from "../k8s/events";
import { ensureNad, pruneNads } from "./nads";
import { kfcPort } from "../k8s/port";
import { kubeRequest, paths } from "../k8s/transport";
import { GROUP, SubnetGVK, VERSION } from "../../crds/types";
import { applyWrites } from "../k8s/apply";
import { preconditionOf, subnetTarget } from "../../lib/decide/writes";
import { recordSubnetCounts } from "../metrics";
import { LABEL_SUBNET, LABEL_SUBNET_DUAL, SUBNET_FINALIZER } from "../../lib/names";
import { wantedNads } from "../../lib/decide/nads";
import { dualPairProblem } from "../../lib/decide/admit";
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
  const subnet = await kfcPort.getSubnet(name);
  if (subnet) await reconcileSubnet(subnet, opts);
}

/** `forceNads`: apply every NAD even where the cache says it exists (the resync repairs by it). */
export async function reconcileSubnet(
  subnet: MacvlanSubnet,
  opts: { forceNads?: boolean } = {},
): Promise<void> {
  const name = subnet.metadata!.name!;
  const leases = await leasesOf(name);
  if (subnet.metadata?.deletionTimestamp) {
    await finishDeletion(subnet, leases);
    return;
  }
  const removed = await reconcileNads(subnet, leases, opts);
  if (removed.length) {
    await emitEvent(
      subnetTarget(subnet),
      "Normal",
      "NadRemoved",
      `removed the unused NAD(s) ${removed.join(", ")}`,
    );
  }
  await recordConflicts(subnet, leases);
  await writeStatus(subnet, leases);
}

/** Applies the NADs the subnet takes part in (lib/decide/nads.ts), prunes the rest. */
async function reconcileNads(
  subnet: MacvlanSubnet,
  leases: MacvlanLease[],
  opts: { forceNads?: boolean },
): Promise<string[]> {
  const name = subnet.metadata!.name!;
  const labelled = await Promise.all(
    [LABEL_SUBNET, LABEL_SUBNET_DUAL].map(label =>
      kubeRequest<List<a.Namespace>>("GET", paths.core("namespaces"), {
        query: { labelSelector: `${label}=${name}` },
      }),
    ),
  );
  const namespaces = labelled
    .flatMap(l => l.items)
    .map(ns => ({ name: ns.metadata!.name!, labels: ns.metadata?.labels ?? {} }));
  const keep = new Set<string>();
  for (const nad of wantedNads(name, leases, namespaces)) {
    if (!(await namespaceExists(nad.namespace))) continue;
    const pair = nad.subnets.length === 2 ? await pairOf(nad.subnets, subnet) : undefined;
    if (nad.subnets.length === 2 && !pair) continue; // partner gone or not a valid pair: pruned
    keep.add(`${nad.namespace}/${nad.name}`);
    await ensureNad(pair?.[0] ?? subnet, nad.namespace, { force: opts.forceNads, dual: pair?.[1] });
  }
  return pruneNads(name, keep);
}

/** Both subnets of a dual-stack pair, if both exist, are not being deleted and make a pair. */
async function pairOf(
  names: [string, string],
  known: MacvlanSubnet,
): Promise<[MacvlanSubnet, MacvlanSubnet] | undefined> {
  const read = (n: string) => (n === known.metadata?.name ? known : kfcPort.getSubnet(n));
  const [a, b] = await Promise.all(names.map(read));
  if (!a?.spec || !b?.spec || a.metadata?.deletionTimestamp || b.metadata?.deletionTimestamp)
    return undefined;
  return dualPairProblem(a, b) ? undefined : [a, b];
}

/** Conflict leases for the addresses the agents find in use on the LAN (lib/decide/conflicts.ts). */
async function recordConflicts(subnet: MacvlanSubnet, leases: MacvlanLease[]): Promise<void> {
  const groups = planConflictLeases(subnet, leases);
  for (const g of groups) await applyWrites(kfcPort, g);
  // Each write changes a lease, whose watch event schedules another reconcile with fresh counts.
}

interface List<T> {
  items: T[];
}

const subnetPath = (name: string) => paths.group(GROUP, VERSION, SubnetGVK.plural, undefined, name);

async function leasesOf(subnet: string): Promise<MacvlanLease[]> {
  const path = paths.group(GROUP, VERSION, "macvlanleases");
  const query = { labelSelector: `${LABEL_SUBNET}=${subnet}` };
  return (await kubeRequest<List<MacvlanLease>>("GET", path, { query })).items;
}

/** A merge patch of the status subresource (idempotent: a retry writes the same). */
const patchStatus = (name: string, status: MacvlanSubnet["status"]) =>
  kubeRequest("PATCH", `${subnetPath(name)}/status`, {
    body: { status },
    contentType: "application/merge-patch+json",
  });

async function namespaceExists(name: string): Promise<boolean> {
  const ns = await getIfExists(() =>
    kubeRequest<a.Namespace>("GET", paths.core("namespaces", undefined, name)),
  );
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
  await patchStatus(subnet.metadata!.name!, status);
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
      await patchStatus(name, {
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
      });
      await emitEvent(subnetTarget(subnet), "Normal", "Terminating", message);
    }
    return;
  }
  await pruneNads(name, new Set());
  const index = finalizers.indexOf(SUBNET_FINALIZER);
  // The test makes a retried removal (after a lost answer) fail as a conflict, never remove
  // another finalizer that moved into this index.
  await kubeRequest("PATCH", subnetPath(name), {
    contentType: "application/json-patch+json",
    body: [
      { op: "test", path: `/metadata/finalizers/${index}`, value: SUBNET_FINALIZER },
      { op: "remove", path: `/metadata/finalizers/${index}` },
    ],
  });
  Log.info(`subnet ${name}: no leases left, finalizer removed`);
}
