// What the plugin reads from the cluster, as plain objects (kubectl's JSON fits). Every command is
// a pure function from such a snapshot to rows, checks or writes; cli/kubectl.ts fills it.
import type { MacvlanLease, MacvlanSubnet } from "../crds/types";
import type { PodSnapshot } from "../lib/decide/pods";

export type { MacvlanLease, MacvlanSubnet };

export interface Pod extends PodSnapshot {
  metadata?: PodSnapshot["metadata"] & { creationTimestamp?: string };
  spec?: { nodeName?: string };
  status?: PodSnapshot["status"] & { podIP?: string; reason?: string; message?: string };
}

export interface Namespace {
  metadata?: { name?: string; labels?: Record<string, string> };
}

export interface KubeEvent {
  type?: string;
  reason?: string;
  message?: string;
  count?: number;
  lastTimestamp?: string;
  eventTime?: string;
  firstTimestamp?: string;
  metadata?: { creationTimestamp?: string };
  involvedObject?: { kind?: string; name?: string; namespace?: string; uid?: string };
  source?: { component?: string };
  reportingComponent?: string;
}

/** The time an Event last happened, whichever field its writer filled. */
export const eventTime = (e: KubeEvent): string =>
  e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata?.creationTimestamp ?? "";

export interface Snapshot {
  subnets: MacvlanSubnet[];
  leases: MacvlanLease[];
  pods: Pod[];
  namespaces: Namespace[];
  events: KubeEvent[];
  now: Date;
}

export const emptySnapshot = (now = new Date()): Snapshot => ({
  subnets: [],
  leases: [],
  pods: [],
  namespaces: [],
  events: [],
  now,
});

export const nameOf = (o: { metadata?: { name?: string } }) => o.metadata?.name ?? "";
