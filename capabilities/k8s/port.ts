// The one Kubernetes port of the operator: every read and write the capabilities make goes
// through it, so unit tests fake it. Ownership writes carry preconditions: JSON patches test the
// lease's uid and resourceVersion, deletes send DeleteOptions.preconditions (KFC's Delete and
// PatchStatus cannot, so those two go through a thin raw request on KFC's own connection setup).
import { K8s, fetch, kind, type Operation } from "kubernetes-fluent-client";
import { k8sCfg } from "kubernetes-fluent-client/dist/fluent/utils.js";
import { FetchMethods } from "kubernetes-fluent-client/dist/fluent/shared-types.js";
import { a } from "pepr";
import { MacvlanLease, MacvlanSubnet } from "../../crds/kinds";
import { LeaseGVK, MacvlanLeaseSpec, MacvlanLeaseStatus } from "../../crds/types";
import { EventTarget, Precondition } from "../../lib/decide/writes";
import { getIfExists, withRetry } from "../../lib/k8s/errors";
import { NamespaceInfo } from "../../lib/selection";
import { emitEvent } from "./events";

export interface KubePort {
  getLease(name: string): Promise<MacvlanLease | undefined>;
  listLeases(): Promise<MacvlanLease[]>;
  createLease(lease: MacvlanLease): Promise<MacvlanLease>;
  patchLease(
    lock: Precondition,
    spec: Partial<MacvlanLeaseSpec>,
    annotations?: Record<string, string>,
  ): Promise<MacvlanLease>;
  setLeaseStatus(lock: Precondition, status: MacvlanLeaseStatus): Promise<MacvlanLease>;
  deleteLease(lock: Precondition): Promise<void>;
  getPod(namespace: string, name: string): Promise<a.Pod | undefined>;
  listPods(): Promise<a.Pod[]>;
  getSubnet(name: string): Promise<MacvlanSubnet | undefined>;
  listSubnets(): Promise<MacvlanSubnet[]>;
  listNamespaces(): Promise<NamespaceInfo[]>;
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

const leasePath = (name: string) =>
  `/apis/${LeaseGVK.group}/${LeaseGVK.version}/${LeaseGVK.plural}/${encodeURIComponent(name)}`;

/** A request KFC's fluent API cannot make, on KFC's own credentials and TLS setup. */
async function raw<T>(
  method: "PATCH" | "DELETE",
  path: string,
  body: unknown,
  type: string,
): Promise<T> {
  const { opts, serverUrl } = await k8sCfg(method as FetchMethods);
  const init = {
    ...opts,
    headers: { ...opts.headers, "Content-Type": type },
    body: JSON.stringify(body),
  };
  const resp = await fetch<T>(
    new URL(path, String(serverUrl)),
    init as Parameters<typeof fetch>[1],
  );
  if (resp.ok) return resp.data;
  throw resp;
}

/** Reads are idempotent: a transient failure (unreachable, throttled) is retried a few times. */
const read = <T>(op: () => Promise<T>) => withRetry(op);

export const kfcPort: KubePort = {
  getLease: name => read(() => getIfExists(() => K8s(MacvlanLease).Get(name))),
  listLeases: () => read(async () => (await K8s(MacvlanLease).Get()).items),
  createLease: lease => K8s(MacvlanLease).Create(lease),
  patchLease: (lock, spec, annotations) =>
    K8s(MacvlanLease, { name: lock.name }).Patch([
      ...lockOps(lock),
      ...Object.entries(spec)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => ({ op: "add" as const, path: `/spec/${escapePointer(k)}`, value: v })),
      ...(annotations
        ? [{ op: "add" as const, path: "/metadata/annotations", value: annotations }]
        : []),
    ]),
  setLeaseStatus: (lock, status) =>
    raw<MacvlanLease>(
      "PATCH",
      `${leasePath(lock.name)}/status`,
      [...lockOps(lock), { op: "add", path: "/status", value: status }],
      "application/json-patch+json",
    ),
  deleteLease: async lock => {
    const preconditions = { uid: lock.uid, resourceVersion: lock.resourceVersion };
    try {
      await raw(
        "DELETE",
        leasePath(lock.name),
        { apiVersion: "v1", kind: "DeleteOptions", preconditions },
        "application/json",
      );
    } catch (e) {
      if ((e as { status?: number }).status !== 404) throw e;
    }
  },
  getPod: (namespace, name) => read(() => getIfExists(() => K8s(a.Pod, { namespace }).Get(name))),
  listPods: () => read(async () => (await K8s(a.Pod).Get()).items),
  getSubnet: name => read(() => getIfExists(() => K8s(MacvlanSubnet).Get(name))),
  listSubnets: () => read(async () => (await K8s(MacvlanSubnet).Get()).items),
  listNamespaces: () =>
    read(async () => (await K8s(kind.Namespace).Get()).items).then(items =>
      items.map(ns => ({ name: ns.metadata!.name!, labels: ns.metadata?.labels ?? {} })),
    ),
  getStatefulSet: (namespace, name) =>
    read(() => getIfExists(() => K8s(a.StatefulSet, { namespace }).Get(name))),
  event: emitEvent,
};
