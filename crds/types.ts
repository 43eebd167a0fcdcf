// TypeScript twin of crds/*.yaml. test/unit/crd-drift.test.ts fails when the two disagree.
import { GenericKind } from "kubernetes-fluent-client";

export const GROUP = "macvlan.dev";
export const VERSION = "v1alpha1";

export type MacvlanMode = "bridge" | "private" | "vepa" | "passthru";
export const MACVLAN_MODES: readonly MacvlanMode[] = ["bridge", "private", "vepa", "passthru"];

/** An inclusive address range inside the subnet's CIDR. */
export interface IPRange {
  start: string;
  end: string;
}

/** An extra route in the pod, via net1. */
export interface SubnetRoute {
  dst: string;
  gw?: string;
}

export interface LabelSelectorRequirement {
  key: string;
  operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface MacvlanSubnetSpec {
  master: string;
  vlan?: number;
  mode?: MacvlanMode;
  cidr: string;
  gateway?: string;
  ranges?: IPRange[];
  exclude?: string[];
  routes?: SubnetRoute[];
  podDefaultGateway?: boolean;
  namespaces?: string[];
  namespaceSelector?: LabelSelector;
  reuseDelaySeconds?: number;
  mtu?: number;
}

export interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

/** What the node agent reports for one node. */
export interface NodeReadiness {
  node: string;
  ready: boolean;
  /** The host-side shim device on this node. */
  shim?: string;
  message?: string;
  lastUpdateTime?: string;
}

export interface MacvlanSubnetStatus {
  conditions?: Condition[];
  observedGeneration?: number;
  total?: string;
  allocated?: number;
  free?: string;
  nodes?: NodeReadiness[];
}

export class MacvlanSubnet extends GenericKind {
  declare spec?: MacvlanSubnetSpec;
  declare status?: MacvlanSubnetStatus;
}

export type LeasePhase = "Reserved" | "Bound" | "Released";
export const LEASE_PHASES: readonly LeasePhase[] = ["Reserved", "Bound", "Released"];

export interface PodRef {
  namespace: string;
  name?: string;
  uid?: string;
}

/** A sticky owner: the lease outlives its pod while the owner still wants this ordinal. */
export interface LeaseOwner {
  kind: "StatefulSet";
  namespace: string;
  name: string;
  uid?: string;
  ordinal: number;
}

export interface MacvlanLeaseSpec {
  subnet: string;
  ip: string;
  mac: string;
  podRef?: PodRef;
  node?: string;
  owner?: LeaseOwner;
  fixed?: boolean;
}

export interface MacvlanLeaseStatus {
  phase?: LeasePhase;
  reservedAt?: string;
  releasedAt?: string;
}

export class MacvlanLease extends GenericKind {
  declare spec?: MacvlanLeaseSpec;
  declare status?: MacvlanLeaseStatus;
}

export const SubnetGVK = { group: GROUP, version: VERSION, kind: "MacvlanSubnet", plural: "macvlansubnets" };
export const LeaseGVK = { group: GROUP, version: VERSION, kind: "MacvlanLease", plural: "macvlanleases" };
