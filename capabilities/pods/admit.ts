// Pod admission: choose the subnet, lease an address, write the Multus selection (design.md §2-3).
// Mutation never throws for a user's mistake: it records the reason in ANN_ADMISSION_ERROR and the
// validating half denies with it, so the user reads one clear message and nothing is leased.
import { randomBytes } from "node:crypto";
import { a, K8s, Log, PeprMutateRequest, PeprValidateRequest } from "pepr";
import { MacvlanLease, MacvlanSubnet } from "../k8s/kinds";
import { ClusterState } from "../cluster-state";
import { Allocator } from "./allocators";
import { describe, isAlreadyExists, isConflict } from "../k8s/errors";
import { ensureNad } from "../subnets/nads";
import { recordAllocation, recordDenial } from "../metrics";
import { settings } from "../../lib/mode";
import {
  ANN_IP,
  ANN_MAC,
  ANN_MULTUS_DEFAULT,
  ANN_MULTUS_NETWORKS,
  ANN_RESERVATION,
  ANN_SINGLE_NIC,
  ANN_SUBNET,
  LABEL_POD_NAMESPACE,
  LABEL_SUBNET,
  nadName,
} from "../../lib/names";
import { namespaceAllowed, requestedSubnet } from "../../lib/selection";
import { mergeSelections, parseSelections, renderSelection } from "../../lib/render/multus";
import { ownerKey, stickyOwnerOf } from "../../lib/owner";
import { leaseName, macFor, IpamError, isIpamError } from "../../lib/ipam";
import { LeaseOwner } from "../../crds/types";

/** Set by mutation, read by validation; never persisted because validation denies the pod. */
export const ANN_ADMISSION_ERROR = "macvlan.dev/admission-error";

export const state = new ClusterState();

class Refusal extends Error {}

export async function assignAddress(req: PeprMutateRequest<a.Pod>): Promise<void> {
  const namespace = req.Request.namespace ?? req.Raw.metadata?.namespace ?? "default";
  const started = performance.now();
  // Pepr also routes pods/ephemeralcontainers here: a debug container joins an existing pod.
  if (req.Request.subResource) return;
  try {
    // Checked for every pod: a pod outside opted-in namespaces could name another namespace's
    // NAD. Only opted-in pods are held to a well-formed selection list (we must merge into it).
    const networks = req.Raw.metadata?.annotations?.[ANN_MULTUS_NETWORKS];
    rejectBypass(parseLeniently(networks, namespace), namespace);
    const nsInfo = await state.namespace(namespace);
    const subnetName = nsInfo && requestedSubnet(req.Raw.metadata?.annotations, nsInfo);
    if (!subnetName) return; // not opted in: the fast path every other pod takes
    const subnet = await requireSubnet(subnetName, namespace);
    if (!namespaceAllowed(subnet, nsInfo)) {
      throw new Refusal(
        `namespace "${namespace}" may not use MacvlanSubnet "${subnetName}": add it to spec.namespaces or ` +
          `match spec.namespaceSelector of the subnet, or pick another subnet with the ${ANN_SUBNET} annotation`,
      );
    }
    const existing = parseSelections(networks, namespace);
    const lease = await leaseFor(req, subnet, namespace);
    const ip = lease.spec!.ip;
    const mac = lease.spec!.mac;
    const singleNic = req.Raw.metadata?.annotations?.[ANN_SINGLE_NIC] === "true";
    const ours = renderSelection(subnet, namespace, ip, mac, { singleNic });
    if (singleNic) {
      // Multus' default network replaces the cluster network: macvlan is the pod's only NIC.
      // Multus 4 reads the default network as a list of selections, like the networks annotation.
      req.SetAnnotation(ANN_MULTUS_DEFAULT, JSON.stringify([ours]));
      if (existing.length) req.SetAnnotation(ANN_MULTUS_NETWORKS, JSON.stringify(existing));
    } else {
      req.SetAnnotation(ANN_MULTUS_NETWORKS, JSON.stringify(mergeSelections(existing, ours)));
    }
    req.SetAnnotation(ANN_SUBNET, subnetName);
    req.SetAnnotation(ANN_IP, ip);
    req.SetAnnotation(ANN_MAC, mac);
    if (!req.Request.dryRun) await ensureNad(subnet, namespace);
    recordAllocation(started);
  } catch (e) {
    const message =
      e instanceof Refusal || isIpamError(e)
        ? e.message
        : `pepr-macvlan could not lease an address: ${describe(e)}`;
    Log.warn({ namespace, pod: req.Raw.metadata?.name ?? req.Raw.metadata?.generateName }, message);
    recordDenial();
    req.SetAnnotation(ANN_ADMISSION_ERROR, message);
  }
}

export function denyFailedAdmission(req: PeprValidateRequest<a.Pod>) {
  const error = req.Raw.metadata?.annotations?.[ANN_ADMISSION_ERROR];
  return error ? req.Deny(error, 422) : req.Approve();
}

async function requireSubnet(name: string, namespace: string): Promise<MacvlanSubnet> {
  const subnet = await state.subnet(name);
  if (!subnet?.spec) {
    throw new Refusal(
      `MacvlanSubnet "${name}" (asked for by namespace "${namespace}" or the pod's ${ANN_SUBNET} annotation) ` +
        `does not exist: create it (kubectl get mvs lists them) or fix the ${LABEL_SUBNET} label / annotation`,
    );
  }
  if (subnet.metadata?.deletionTimestamp) {
    throw new Refusal(
      `MacvlanSubnet "${name}" is being deleted: no new addresses are handed out from it`,
    );
  }
  return subnet;
}

function parseLeniently(networks: string | undefined, namespace: string) {
  try {
    return parseSelections(networks, namespace);
  } catch {
    return []; // Multus will refuse it; not ours to judge for pods that did not opt in
  }
}

/** A pod that names a managed NAD itself would get an address no lease protects. */
function rejectBypass(selections: { name: string; namespace: string }[], namespace: string) {
  for (const sel of selections) {
    const managed = state.subnets.list().find(s => nadName(s.metadata!.name!) === sel.name);
    if (managed) {
      throw new Refusal(
        `the pod names the managed network "${sel.namespace}/${sel.name}" in ${ANN_MULTUS_NETWORKS}: ` +
          `remove it and let pepr-macvlan lease the address (set ${ANN_SUBNET}: ${managed.metadata!.name} ` +
          `on the pod or label namespace "${namespace}"; use ${ANN_IP} for a fixed IP)`,
      );
    }
  }
}

async function leaseFor(
  req: PeprMutateRequest<a.Pod>,
  subnet: MacvlanSubnet,
  namespace: string,
): Promise<MacvlanLease> {
  const owner = stickyOwnerOf(req.Raw, namespace);
  const token = randomBytes(8).toString("hex");
  req.SetAnnotation(ANN_RESERVATION, token);
  if (owner && !req.Request.dryRun) {
    const held = await takeOverStickyLease(owner, subnet, req.Raw.metadata?.name, token);
    if (held) return held;
  }
  const requested = req.Raw.metadata?.annotations?.[ANN_IP]?.trim();
  const fixedMac = req.Raw.metadata?.annotations?.[ANN_MAC]?.trim();
  if (!(await state.ready(5000))) {
    throw new Refusal(
      "pepr-macvlan is starting and has not read the existing leases yet: retry in a few seconds",
    );
  }
  const allocator = state.allocator(subnet);
  const dryRun = req.Request.dryRun === true;
  const subnetName = subnet.metadata!.name!;
  const build = (ip: string, fixed: boolean) =>
    leaseObject(
      subnetName,
      ip,
      fixedMac || macFor(subnetName, ip),
      namespace,
      req.Raw.metadata?.name,
      owner,
      fixed,
      token,
    );

  if (requested) {
    const pool = requested
      .split(",")
      .map(s => s.trim())
      .filter(Boolean);
    let lastError: unknown;
    for (const ip of pool) {
      try {
        allocator.allocate(ip, Date.now());
      } catch (e) {
        if (isIpamError(e, "Taken") && pool.length === 1)
          throw new Refusal(takenMessage(ip, subnetName));
        if (isIpamError(e) && (e.code === "Taken" || e.code === "Cooling") && pool.length > 1) {
          lastError = e;
          continue;
        }
        throw e;
      }
      const lease = await tryCreate(build(ip, true), allocator, dryRun);
      if (lease) return lease;
      lastError = new IpamError("Taken", takenMessage(ip, subnetName), { subnet: subnetName, ip });
    }
    if (pool.length > 1) {
      throw new Refusal(
        `none of the requested addresses ${pool.join(", ")} is free on MacvlanSubnet "${subnetName}" ` +
          `(${describe(lastError)}); free one of them or add more to ${ANN_IP}`,
      );
    }
    throw lastError;
  }

  for (let attempt = 0; attempt < settings.maxAllocationAttempts; attempt++) {
    const ip = allocator.next(Date.now());
    const lease = await tryCreate(build(ip, false), allocator, dryRun);
    if (lease) return lease;
  }
  throw new Refusal(
    `MacvlanSubnet "${subnetName}" is busy: ${settings.maxAllocationAttempts} candidate addresses were taken ` +
      `by concurrent requests; retry the pod`,
  );
}

function takenMessage(ip: string, subnet: string): string {
  const holder = state.leases.get(leaseName(subnet, ip))?.spec?.podRef;
  const who = holder ? ` by pod ${holder.namespace}/${holder.name ?? "(being created)"}` : "";
  return `fixed IP ${ip} on MacvlanSubnet "${subnet}" is already taken${who}: choose another address or free it`;
}

/** Creates the lease; false-y when the name (the address) is already taken by someone else. */
async function tryCreate(
  lease: MacvlanLease,
  allocator: Allocator,
  dryRun: boolean,
): Promise<MacvlanLease | undefined> {
  if (dryRun) {
    // A dry run must not lease anything: answer with the address a real request would get.
    allocator.forget(lease.spec!.ip);
    return state.leases.get(lease.metadata!.name!) ? undefined : lease;
  }
  try {
    const created = await K8s(MacvlanLease).Create(lease);
    state.leases.upsert(created);
    return created;
  } catch (e) {
    if (isAlreadyExists(e)) return undefined; // someone holds it: stays marked, try the next
    allocator.forget(lease.spec!.ip); // nothing was leased: do not leak the address in memory
    throw e;
  }
}

function leaseObject(
  subnet: string,
  ip: string,
  mac: string,
  namespace: string,
  podName: string | undefined,
  owner: LeaseOwner | undefined,
  fixed: boolean,
  token: string,
): MacvlanLease {
  return {
    apiVersion: "macvlan.dev/v1alpha1",
    kind: "MacvlanLease",
    metadata: {
      name: leaseName(subnet, ip),
      labels: { [LABEL_SUBNET]: subnet, [LABEL_POD_NAMESPACE]: namespace },
      annotations: { [ANN_RESERVATION]: token },
    },
    spec: {
      subnet,
      ip,
      mac,
      podRef: { namespace, ...(podName ? { name: podName } : {}) },
      ...(owner ? { owner } : {}),
      fixed,
    },
  } as MacvlanLease;
}

/**
 * A StatefulSet pod takes its ordinal's lease back. The compare-and-swap on resourceVersion means
 * two replicas admitting the same pod name cannot both take it.
 */
async function takeOverStickyLease(
  owner: LeaseOwner,
  subnet: MacvlanSubnet,
  podName: string | undefined,
  token: string,
): Promise<MacvlanLease | undefined> {
  const held = state.leaseByOwner(ownerKey(owner));
  if (!held || held.spec?.subnet !== subnet.metadata!.name || held.status?.phase === "Released")
    return undefined;
  try {
    const patched = await K8s(MacvlanLease, { name: held.metadata!.name! }).Patch([
      { op: "test", path: "/metadata/resourceVersion", value: held.metadata!.resourceVersion },
      {
        op: "replace",
        path: "/spec/podRef",
        value: { namespace: owner.namespace, ...(podName ? { name: podName } : {}) },
      },
      { op: "replace", path: "/spec/owner", value: owner },
      { op: "add", path: "/metadata/annotations", value: { [ANN_RESERVATION]: token } },
    ]);
    state.leases.upsert(patched);
    return patched;
  } catch (e) {
    if (isConflict(e)) {
      Log.info(
        `sticky lease ${held.metadata!.name} changed while admitting ${podName}; leasing anew`,
      );
      return undefined;
    }
    throw e;
  }
}
