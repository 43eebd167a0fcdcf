// Kubernetes Events, the user-visible log of what the product did (allocated, denied, released, repaired).
import { K8s, kind } from "kubernetes-fluent-client";
import { Log } from "pepr";
import { describe } from "./errors";

export interface EventTarget {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
  uid?: string;
}

const COMPONENT = "pepr-macvlan";

export async function emitEvent(
  target: EventTarget,
  type: "Normal" | "Warning",
  reason: string,
  message: string,
): Promise<void> {
  const now = new Date().toISOString();
  // Events of cluster-scoped objects live in "default", as kubectl describe expects.
  const namespace = target.namespace ?? "default";
  try {
    await K8s(kind.CoreEvent).Create({
      metadata: { generateName: `${target.name}.`, namespace },
      involvedObject: { ...target, namespace: target.namespace },
      type,
      reason,
      message: message.slice(0, 1024),
      source: { component: COMPONENT },
      reportingComponent: COMPONENT,
      reportingInstance: process.env.HOSTNAME ?? COMPONENT,
      firstTimestamp: now as unknown as Date,
      lastTimestamp: now as unknown as Date,
      count: 1,
    });
  } catch (e) {
    // An event is best effort: never let it fail the work it reports on.
    Log.warn(`could not record event ${reason} on ${target.kind}/${target.name}: ${describe(e)}`);
  }
}

export const podTarget = (pod: {
  metadata?: { name?: string; namespace?: string; uid?: string };
}) => ({
  apiVersion: "v1",
  kind: "Pod",
  name: pod.metadata?.name ?? "",
  namespace: pod.metadata?.namespace,
  uid: pod.metadata?.uid,
});

export const subnetTarget = (subnet: { metadata?: { name?: string; uid?: string } }) => ({
  apiVersion: "macvlan.dev/v1alpha1",
  kind: "MacvlanSubnet",
  name: subnet.metadata?.name ?? "",
  uid: subnet.metadata?.uid,
});
