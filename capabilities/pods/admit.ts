// Pod admission (design.md §2-3): lib/decide/admit.ts decides over the admission replica's caches;
// this file leases (the lease create is the lock) and writes the annotations. Mutation never
// throws for a user's mistake: it records the reason in ANN_ADMISSION_ERROR and the validating
// half denies with it, so the user reads one clear message and nothing is leased.
import { randomBytes } from "node:crypto";
import { a, Log, PeprMutateRequest, PeprValidateRequest } from "pepr";
import { MacvlanLease } from "../k8s/kinds";
import { ClusterState } from "../cluster-state";
import { denialStatus, describe, isAlreadyExists, isConflict } from "../../lib/k8s/errors";
import { ensureNad } from "../subnets/nads";
import { recordAllocation, recordDenial, recordPoolUse, recordSkip, stepTimer } from "../metrics";
import { KubePort, kfcPort } from "../k8s/port";
import { settings } from "../../lib/mode";
import { ANN_IP, ANN_MAC, ANN_MULTUS_NETWORKS } from "../../lib/names";
import {
  LeaseRequestPlan,
  Refusal,
  planAdmission,
  podAnnotationsFor,
  takeoverWrites,
} from "../../lib/decide/admit";
import { renderLease } from "../../lib/render/lease";
import { stickyKey } from "../../lib/owner";
import { managedNadName } from "../../lib/render/nad";
import { leaseName, macFor, isIpamError, SubnetAllocator } from "../../lib/ipam";
import { macProblem } from "../../lib/decide/repair";
import { requestedSubnet } from "../../lib/selection";
import { updateRefusal } from "../../lib/decide/immutable";
import { ReplicaPool } from "./pool";
import { ANN_POOL_OWNER, isReturnable } from "../../lib/decide/pool";

/** Set by mutation, read by validation; never persisted because validation denies the pod. */
export const ANN_ADMISSION_ERROR = "macvlan.dev/admission-error";

export const state = new ClusterState();
/** This replica's pre-leased addresses (./pool.ts); off until started. */
export const pool = new ReplicaPool(state);

export async function assignAddress(
  req: PeprMutateRequest<a.Pod>,
  port: KubePort = kfcPort,
): Promise<void> {
  const namespace = req.Request.namespace ?? req.Raw.metadata?.namespace ?? "default";
  const started = performance.now();
  const timer = stepTimer();
  // Pepr also routes pods/ephemeralcontainers here: a debug container joins an existing pod.
  if (req.Request.subResource) return;
  // Only this mutation may set it: a pod's own copy would deny it with the author's text.
  if (req.Raw.metadata?.annotations?.[ANN_ADMISSION_ERROR] !== undefined)
    req.RemoveAnnotation(ANN_ADMISSION_ERROR);
  try {
    const namespaceInfo = await state.namespace(namespace);
    const wanted = namespaceInfo && requestedSubnet(req.Raw.metadata?.annotations, namespaceInfo);
    if (wanted) await state.subnet(wanted); // read through: a subnet created a moment ago
    timer.mark("caches");
    const plan = planAdmission({
      pod: req.Raw,
      namespace,
      namespaceInfo,
      subnets: state.subnetsByName(),
    });
    if (plan.kind === "skip") return recordSkip(started); // not opted in: the fast path every other pod takes
    if (plan.kind === "deny") throw new Refusal(plan.message);
    const dryRun = req.Request.dryRun === true;
    timer.mark("plan");
    const [lease, dualLease] = await leasesFor(req, plan, namespace, port, dryRun);
    timer.mark("lease");
    const annotations = podAnnotationsFor(
      plan,
      lease,
      namespace,
      req.Raw.metadata?.annotations?.[ANN_MULTUS_NETWORKS],
      dualLease,
    );
    for (const [key, value] of Object.entries(annotations)) req.SetAnnotation(key, value);
    if (!dryRun) await ensureNad(plan.subnet, namespace, { dual: plan.dual?.subnet });
    timer.mark("nad");
    recordAllocation(started);
    Log.debug({ namespace, ip: lease.spec?.ip, ms: timer.steps }, "pepr-macvlan admission steps");
  } catch (e) {
    const message =
      e instanceof Refusal || isIpamError(e)
        ? e.message
        : `pepr-macvlan could not lease an address: ${describe(e)}`;
    Log.warn({ namespace, pod: req.Raw.metadata?.name ?? req.Raw.metadata?.generateName }, message);
    recordDenial(started, e, message);
    req.SetAnnotation(ANN_ADMISSION_ERROR, message);
  }
}

export function denyFailedAdmission(req: PeprValidateRequest<a.Pod>) {
  const error = req.Raw.metadata?.annotations?.[ANN_ADMISSION_ERROR];
  return error ? req.Deny(error, denialStatus(error)) : req.Approve(); // 503: only a retry is due
}

/** Pod UPDATE: the annotations admission wrote (and the Multus ones) cannot change. */
export function denyProtectedChange(req: PeprValidateRequest<a.Pod>) {
  if (req.Request.subResource) return req.Approve();
  const refusal = updateRefusal(
    req.OldResource?.metadata?.annotations,
    req.Raw.metadata?.annotations,
  );
  return refusal ? req.Deny(refusal, 422) : req.Approve();
}

/**
 * The pod's lease, and with dual stack the other family's (same MAC, same token, both naming the
 * pair's NAD). A denial of the second family leases neither: the first lease is taken back.
 */
async function leasesFor(
  req: PeprMutateRequest<a.Pod>,
  plan: LeaseRequestPlan,
  namespace: string,
  port: KubePort,
  dryRun: boolean,
): Promise<[MacvlanLease, MacvlanLease?]> {
  // The sticky takeover and the allocator both read the lease cache: wait until it is whole.
  if (!(await state.ready(5000))) {
    throw new Refusal(
      "pepr-macvlan is starting and has not read the existing leases yet: retry in a few seconds",
    );
  }
  const token = randomBytes(8).toString("hex");
  const nad = plan.dual ? managedNadName(plan.subnet, plan.dual.subnet) : undefined;
  const first = await leaseFor(req, plan, namespace, port, dryRun, { token, nad });
  if (!plan.dual) return [first];
  const second: LeaseRequestPlan = {
    ...plan,
    ...plan.dual,
    mac: first.spec!.mac,
    dual: undefined,
  };
  try {
    return [first, await leaseFor(req, second, namespace, port, dryRun, { token, nad })];
  } catch (e) {
    if (!dryRun) await takeBack(first, port);
    throw e;
  }
}

/**
 * Deletes a lease admission just made for a pod it then denied. A StatefulSet ordinal's lease
 * stays: it is the ordinal's either way, and the next try of the pod takes it over.
 */
async function takeBack(lease: MacvlanLease, port: KubePort): Promise<void> {
  if (lease.spec?.owner) return;
  try {
    await port.deleteLease({
      name: lease.metadata!.name!,
      uid: lease.metadata?.uid,
      resourceVersion: lease.metadata?.resourceVersion,
    });
    state.leases.forget(lease);
  } catch (e) {
    // The resync reclaims a Reserved lease no pod claims after the TTL.
    Log.warn(`could not take back lease ${lease.metadata?.name}: ${describe(e)}`);
  }
}

async function leaseFor(
  req: PeprMutateRequest<a.Pod>,
  plan: LeaseRequestPlan,
  namespace: string,
  port: KubePort,
  dryRun: boolean,
  { token, nad }: { token: string; nad?: string },
): Promise<MacvlanLease> {
  const podName = req.Raw.metadata?.name;
  const subnetName = plan.subnet.metadata!.name!;
  if (plan.owner && !dryRun) {
    const taken = await takeOver(port, plan, podName, token);
    if (taken) return taken;
  }
  // Any free address, default MAC, no sticky owner: a pre-leased one, with no API request.
  if (!plan.owner && !plan.fixedIps.length && !plan.mac && !plan.dual && !dryRun) {
    const pooled = pool.take(plan.subnet, namespace, podName);
    recordPoolUse(!!pooled);
    if (pooled) return pooled;
  }
  const allocator = state.allocator(plan.subnet);
  const build = (ip: string, fixed: boolean) => {
    const mac = plan.mac ?? macFor(subnetName, ip);
    const problem = plan.mac && macProblem(mac, subnetName, state.leasesOf(subnetName));
    if (problem)
      throw new Refusal(`${ANN_MAC} ${plan.mac}: ${problem}; choose another MAC or leave it out`);
    return renderLease({
      subnet: subnetName,
      ip,
      mac,
      pod: { namespace, name: podName },
      owner: plan.owner,
      fixed,
      token,
      nad,
    });
  };
  if (plan.fixedIps.length) return leaseFixed(plan, allocator, build, port, dryRun);
  for (let attempt = 0; attempt < settings.maxAllocationAttempts; attempt++) {
    const ip = allocator.next(Date.now());
    const lease = await tryCreate(build(ip, false), allocator, port, dryRun);
    if (lease) return lease;
  }
  throw new Refusal(
    `MacvlanSubnet "${subnetName}" is busy: ${settings.maxAllocationAttempts} candidate addresses were taken ` +
      `by concurrent requests; retry the pod`,
  );
}

/** One fixed IP, or the first free one of a comma-separated pool. */
async function leaseFixed(
  plan: LeaseRequestPlan,
  allocator: SubnetAllocator,
  build: (ip: string, fixed: boolean) => MacvlanLease,
  port: KubePort,
  dryRun: boolean,
): Promise<MacvlanLease> {
  const subnetName = plan.subnet.metadata!.name!;
  const candidates = plan.fixedIps;
  let lastError = "";
  for (const ip of candidates) {
    try {
      await allocateFixed(allocator, subnetName, ip, dryRun);
    } catch (e) {
      const skippable = isIpamError(e) && (e.code === "Taken" || e.code === "Cooling");
      if (!skippable)
        throw isIpamError(e) ? new Refusal(`${ANN_IP} ${ip}: ${e.message}`, e.code) : e;
      lastError = e.code === "Taken" ? takenMessage(ip, subnetName) : e.message;
      if (candidates.length === 1) throw new Refusal(lastError);
      continue;
    }
    const lease = await tryCreate(build(ip, true), allocator, port, dryRun);
    if (lease) return lease;
    lastError = takenMessage(ip, subnetName);
  }
  if (candidates.length === 1) throw new Refusal(lastError);
  throw new Refusal(
    `none of the requested addresses ${candidates.join(", ")} is free on MacvlanSubnet "${subnetName}" ` +
      `(${lastError}); free one of them or add more to ${ANN_IP}`,
  );
}

/**
 * Marks a fixed IP taken in the allocator (throws the allocator's error). An address that sits
 * unused in an admission replica's pool is no one's yet: it is asked back first (./pool.ts).
 */
async function allocateFixed(
  allocator: SubnetAllocator,
  subnet: string,
  ip: string,
  dryRun: boolean,
): Promise<void> {
  try {
    allocator.allocate(ip, Date.now());
    return;
  } catch (e) {
    const taken = isIpamError(e) && e.code === "Taken" && !dryRun;
    const holder = taken ? state.leases.get(leaseName(subnet, ip)) : undefined;
    if (!holder || !isReturnable(holder) || !(await pool.reclaim(holder))) throw e;
  }
  allocator.allocate(ip, Date.now());
}

function takenMessage(ip: string, subnet: string): string {
  const holder = state.leases.get(leaseName(subnet, ip));
  const what = `fixed IP ${ip} on MacvlanSubnet "${subnet}"`;
  if (holder && isReturnable(holder)) {
    const owner = holder.metadata?.annotations?.[ANN_POOL_OWNER] ?? "?";
    return (
      `${what} is held by admission replica ${owner} for a pod being admitted, or that replica ` +
      `did not give it back in time: retry in a few seconds, or choose another address`
    );
  }
  const ref = holder?.spec?.podRef;
  const who = ref ? ` by pod ${ref.namespace}/${ref.name ?? "(being created)"}` : "";
  return `${what} is already taken${who}: choose another address or free it`;
}

/** Creates the lease; undefined when the name (the address) is already taken by someone else. */
async function tryCreate(
  lease: MacvlanLease,
  allocator: SubnetAllocator,
  port: KubePort,
  dryRun: boolean,
): Promise<MacvlanLease | undefined> {
  if (dryRun) {
    // A dry run must not lease anything: answer with the address a real request would get.
    allocator.forget(lease.spec!.ip);
    return state.leases.get(lease.metadata!.name!) ? undefined : lease;
  }
  try {
    const created = await port.createLease(lease);
    state.leases.upsert(created);
    return created;
  } catch (e) {
    if (isAlreadyExists(e)) return undefined; // someone holds it: stays marked, try the next
    allocator.forget(lease.spec!.ip); // nothing was leased: do not leak the address in memory
    throw e;
  }
}

/** The StatefulSet ordinal's lease, taken back by a compare-and-swap; undefined if there is none. */
async function takeOver(
  port: KubePort,
  plan: LeaseRequestPlan,
  podName: string | undefined,
  token: string,
): Promise<MacvlanLease | undefined> {
  const held = state.leaseByOwner(stickyKey(plan.owner!, plan.subnet.spec?.cidr));
  const taken = await takeOverLease(port, held, plan, podName, token);
  if (taken) state.leases.upsert(taken);
  return taken;
}

/** Compare-and-swap attempts on the ordinal's lease before admission leases a new address. */
export const TAKEOVER_ATTEMPTS = 3;

/**
 * Takes `held` (the cache's copy of the ordinal's lease) for the pod. A conflict means the copy
 * was stale: the watcher had just marked it Reserved for the ordinal when the pod was deleted,
 * which is exactly when the pod comes back. So read the lease again and retry, rather than
 * leasing a second address for the ordinal; a lease gone or taken by another owner ends it.
 */
export async function takeOverLease(
  port: KubePort,
  held: MacvlanLease | undefined,
  plan: LeaseRequestPlan,
  podName: string | undefined,
  token: string,
): Promise<MacvlanLease | undefined> {
  for (let attempt = 1; held; attempt++) {
    const [write] = takeoverWrites(held, plan.owner!, plan.subnet.metadata!.name!, podName, token);
    if (write?.op !== "patchLease") return undefined;
    try {
      return await port.patchLease(write.lease, write.spec, write.annotations);
    } catch (e) {
      if (!isConflict(e)) throw e;
      if (attempt >= TAKEOVER_ATTEMPTS) {
        Log.info(
          `sticky lease ${write.lease.name} kept changing while admitting ${podName}; leasing anew`,
        );
        return undefined;
      }
      held = await port.getLease(write.lease.name);
    }
  }
  return undefined;
}
