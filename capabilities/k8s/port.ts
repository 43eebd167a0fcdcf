// The one Kubernetes port of the operator: every read and write the capabilities make goes
// through it, so unit tests fake it. Ownership writes carry preconditions: JSON patches test the
// lease's uid and resourceVersion, deletes send DeleteOptions.preconditions. Every request goes
// over one keep-alive connection pool (./transport.ts): KFC alone opens a new TLS connection per
// call. Transient failures are retried there (lib/k8s/retry.ts); a retried write is safe because
// every write is a create (the name is the lock, see createLease), a precondition-guarded patch
// or delete, or idempotent.
import { type Operation } from "kubernetes-fluent-client";
import { a } from "pepr";
import { MacvlanLease, MacvlanSubnet } from "../../crds/kinds";
import {
  GROUP,
  LeaseGVK,
  MacvlanLeaseSpec,
  MacvlanLeaseStatus,
  SubnetGVK,
  VERSION,
} from "../../crds/types";
import { EventTarget, Precondition } from "../../lib/decide/writes";
import { getIfExists, isAlreadyExists } from "../../lib/k8s/errors";
import { isOwnEarlierCreate } from "../../lib/k8s/retry";
import { ANN_RESERVATION } from "../../lib/names";
import { isObjectName } from "../../lib/validation/names";
import { ANN_POOL_COMMITMENT, ANN_POOL_OWNER } from "../../lib/decide/pool";
import { NamespaceInfo } from "../../lib/selection";
import { emitEvent } from "./events";
import { kubeRequest, paths } from "./transport";

export interface KubePort {
  getLease(name: string): Promise<MacvlanLease | undefined>;
  listLeases(): Promise<MacvlanLease[]>;
  createLease(lease: MacvlanLease): Promise<MacvlanLease>;
  patchLease(
    lock: Precondition,
    spec: Partial<MacvlanLeaseSpec>,
    annotations?: Record<string, string>,
    labels?: Record<string, string>,
  ): Promise<MacvlanLease>;
  setLeaseStatus(lock: Precondition, status: MacvlanLeaseStatus): Promise<MacvlanLease>;
  deleteLease(lock: Precondition): Promise<void>;
  getPod(namespace: string, name: string): Promise<a.Pod | undefined>;
  listPods(): Promise<a.Pod[]>;
  getSubnet(name: string): Promise<MacvlanSubnet | undefined>;
  listSubnets(): Promise<MacvlanSubnet[]>;
  listNamespaces(): Promise<NamespaceInfo[]>;
  getNamespace(name: string): Promise<NamespaceInfo | undefined>;
  getStatefulSet(namespace: string, name: string): Promise<a.StatefulSet | undefined>;
  event(
    target: EventTarget,
    type: "Normal" | "Warning",
    reason: string,
    message: string,
  ): Promise<void>;
}

type JsonPatchOp = Operation;

const escapePointer = (s: string) => s.replace(/~/g, "~0").replace(/\//g, "~1");

/** The `test` ops that make a patch a compare-and-swap on what the decision saw. */
function lockOps(lock: Precondition): JsonPatchOp[] {
  const ops: JsonPatchOp[] = [];
  if (lock.uid) ops.push({ op: "test", path: "/metadata/uid", value: lock.uid });
  if (lock.resourceVersion)
    ops.push({ op: "test", path: "/metadata/resourceVersion", value: lock.resourceVersion });
  return ops;
}

const leasePath = (name?: string) => paths.group(GROUP, VERSION, LeaseGVK.plural, undefined, name);
const subnetPath = (name?: string) =>
  paths.group(GROUP, VERSION, SubnetGVK.plural, undefined, name);
const JSON_PATCH = "application/json-patch+json";

interface List<T> {
  items: T[];
}

/** Reads are idempotent; kubeRequest already retries transient failures. */
const read = <T>(op: () => Promise<T>) => op();

/**
 * A GET of a named object. A name no object can have (a pod annotation may say anything) is not
 * sent: "::/0" would ask for subresource "0" of "::" and come back 403, not 404.
 */
const getNamed = <T>(names: (string | undefined)[], op: () => Promise<T>) =>
  names.every(n => n === undefined || isObjectName(n))
    ? read(() => getIfExists(op))
    : Promise.resolve(undefined);

/** The random tokens a lease create carries: the proof that an existing lease is our own. */
export const LEASE_TOKEN_KEYS = [ANN_RESERVATION, ANN_POOL_COMMITMENT, ANN_POOL_OWNER] as const;

/**
 * The create is the lock, so it is never retried blindly: if an attempt failed in a way that
 * may have reached the server (a timeout, a broken connection) and the retry finds the name
 * taken, the lease is ours exactly when it carries the tokens we sent.
 */
export async function createLeaseOnce(
  lease: MacvlanLease,
  post: (onRetry: () => void) => Promise<MacvlanLease>,
  get: (name: string) => Promise<MacvlanLease | undefined>,
): Promise<MacvlanLease> {
  let retried = false;
  try {
    return await post(() => (retried = true));
  } catch (e) {
    if (!retried || !isAlreadyExists(e)) throw e;
    const existing = await get(lease.metadata!.name!);
    if (isOwnEarlierCreate(lease, existing, LEASE_TOKEN_KEYS)) return existing!;
    throw e;
  }
}

export const kfcPort: KubePort = {
  getLease: name => getNamed([name], () => kubeRequest<MacvlanLease>("GET", leasePath(name))),
  listLeases: () =>
    read(async () => (await kubeRequest<List<MacvlanLease>>("GET", leasePath())).items),
  createLease: lease =>
    createLeaseOnce(
      lease,
      onRetry => kubeRequest<MacvlanLease>("POST", leasePath(), { body: lease, onRetry }),
      name => kfcPort.getLease(name),
    ),
  patchLease: (lock, spec, annotations, labels) =>
    kubeRequest<MacvlanLease>("PATCH", leasePath(lock.name), {
      contentType: JSON_PATCH,
      body: [
        ...lockOps(lock),
        ...Object.entries(spec)
          .filter(([, v]) => v !== undefined)
          .map(([k, v]) => ({ op: "add" as const, path: `/spec/${escapePointer(k)}`, value: v })),
        ...(annotations
          ? [{ op: "add" as const, path: "/metadata/annotations", value: annotations }]
          : []),
        ...(labels ? [{ op: "add" as const, path: "/metadata/labels", value: labels }] : []),
      ],
    }),
  setLeaseStatus: (lock, status) =>
    kubeRequest<MacvlanLease>("PATCH", `${leasePath(lock.name)}/status`, {
      contentType: JSON_PATCH,
      body: [...lockOps(lock), { op: "add", path: "/status", value: status }],
    }),
  deleteLease: async lock => {
    const preconditions = { uid: lock.uid, resourceVersion: lock.resourceVersion };
    try {
      await kubeRequest("DELETE", leasePath(lock.name), {
        body: { apiVersion: "v1", kind: "DeleteOptions", preconditions },
      });
    } catch (e) {
      if ((e as { status?: number }).status !== 404) throw e;
    }
  },
  getPod: (namespace, name) =>
    getNamed([namespace, name], () =>
      kubeRequest<a.Pod>("GET", paths.core("pods", namespace, name)),
    ),
  listPods: () =>
    read(async () => (await kubeRequest<List<a.Pod>>("GET", paths.core("pods"))).items),
  getSubnet: name => getNamed([name], () => kubeRequest<MacvlanSubnet>("GET", subnetPath(name))),
  listSubnets: () =>
    read(async () => (await kubeRequest<List<MacvlanSubnet>>("GET", subnetPath())).items),
  listNamespaces: () =>
    read(
      async () => (await kubeRequest<List<a.Namespace>>("GET", paths.core("namespaces"))).items,
    ).then(items =>
      items.map(ns => ({ name: ns.metadata!.name!, labels: ns.metadata?.labels ?? {} })),
    ),
  getNamespace: name =>
    getNamed([name], () =>
      kubeRequest<a.Namespace>("GET", paths.core("namespaces", undefined, name)),
    ).then(ns => ns && { name, labels: ns.metadata?.labels ?? {} }),
  getStatefulSet: (namespace, name) =>
    getNamed([namespace, name], () =>
      kubeRequest<a.StatefulSet>("GET", paths.group("apps", "v1", "statefulsets", namespace, name)),
    ),
  event: emitEvent,
};
