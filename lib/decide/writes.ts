// What a decision asks the Kubernetes port to do. Every write that decides ownership of an
// address carries a precondition (the lease's uid and resourceVersion as the decision saw them):
// if the lease changed since, the write fails as a conflict and the caller decides again.
import { MacvlanLease, MacvlanLeaseSpec, MacvlanLeaseStatus } from "../../crds/types";

/** The lease as the decision saw it. */
export interface Precondition {
  name: string;
  uid?: string;
  resourceVersion?: string;
}

export interface EventTarget {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
  uid?: string;
}

export interface EventWrite {
  op: "event";
  target: EventTarget;
  type: "Normal" | "Warning";
  reason: string;
  message: string;
}

export type Write =
  | { op: "createLease"; lease: MacvlanLease; status?: MacvlanLeaseStatus }
  | {
      op: "patchLease";
      lease: Precondition;
      spec: Partial<MacvlanLeaseSpec>;
      /** Replaces the lease's annotations (labels) as a whole. */
      annotations?: Record<string, string>;
      labels?: Record<string, string>;
    }
  | { op: "setLeaseStatus"; lease: Precondition; status: MacvlanLeaseStatus }
  | { op: "deleteLease"; lease: Precondition }
  | EventWrite;

export const preconditionOf = (lease: MacvlanLease): Precondition => ({
  name: lease.metadata!.name!,
  uid: lease.metadata?.uid,
  resourceVersion: lease.metadata?.resourceVersion,
});

export const event = (
  target: EventTarget,
  type: EventWrite["type"],
  reason: string,
  message: string,
): EventWrite => ({ op: "event", target, type, reason, message });

export const podTarget = (pod: {
  metadata?: { name?: string; namespace?: string; uid?: string };
}): EventTarget => ({
  apiVersion: "v1",
  kind: "Pod",
  name: pod.metadata?.name ?? "",
  namespace: pod.metadata?.namespace,
  uid: pod.metadata?.uid,
});

export const subnetTarget = (subnet: {
  metadata?: { name?: string; uid?: string };
}): EventTarget => ({
  apiVersion: "macvlan.dev/v1alpha1",
  kind: "MacvlanSubnet",
  name: subnet.metadata?.name ?? "",
  uid: subnet.metadata?.uid,
});
