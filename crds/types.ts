// TypeScript twin of crds/*.yaml. test/unit/crd-drift.test.ts fails when the two disagree:
// property names, optionality, primitive types, arrays, nested interfaces and string-literal
// unions (enums) must match the CRDs' openAPIV3Schema. Change both together.
// Pure types: nothing here imports the Kubernetes client, so lib/ can use them. The KFC classes
// that `K8s(...)` needs are in crds/kinds.ts.

export const GROUP = "macvlan.dev";
export const VERSION = "v1alpha1";

export type MacvlanMode = "bridge" | "private" | "vepa" | "passthru";
export const MACVLAN_MODES: readonly MacvlanMode[] = ["bridge", "private", "vepa", "passthru"];

/** Limits and defaults that the CRD schema also states (the drift test compares them). */
export const VLAN_MIN = 0;
export const VLAN_MAX = 4094;
export const MTU_MIN = 68;
export const MTU_MAX = 65535;
export const DEFAULT_VLAN = 0;
export const DEFAULT_MODE: MacvlanMode = "bridge";
export const DEFAULT_REUSE_DELAY_SECONDS = 30;
/** Longest Linux interface name (IFNAMSIZ - 1); applies to `master` and to `<master>.<vlan>`. */
export const IFNAME_MAX = 15;
/** A subnet's name is the value of the `macvlan.dev/subnet` label, so it is at most 63 chars. */
export const SUBNET_NAME_MAX = 63;

/** An inclusive address range inside the subnet's CIDR. */
export interface IPRange {
  start: string;
  end: string;
}

/** An extra route in the pod, via net1. */
export interface SubnetRoute {
  /** Destination network in CIDR notation. */
  dst: string;
  /** Next hop inside the subnet's CIDR; without it CNI uses the address's gateway. */
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
  /** Parent NIC on the nodes, e.g. `eth0`. */
  master: string;
  /** 802.1Q VLAN id, 0 = untagged (default). With vlan>0 the parent is `<master>.<vlan>`. */
  vlan?: number;
  /** macvlan mode, default `bridge`. */
  mode?: MacvlanMode;
  /** The IPv4 or IPv6 network, e.g. `198.18.100.0/24`. */
  cidr: string;
  /** The LAN router, inside `cidr`; never handed out. */
  gateway?: string;
  /** The pool; default the whole usable CIDR. */
  ranges?: IPRange[];
  /** IPs or CIDRs never handed out. */
  exclude?: string[];
  routes?: SubnetRoute[];
  /** The pod's default route goes via `gateway` on net1. */
  podDefaultGateway?: boolean;
  /** Namespaces that may use the subnet. */
  namespaces?: string[];
  /** Namespaces (by label) that may use the subnet. */
  namespaceSelector?: LabelSelector;
  /** Seconds a released IP waits before reuse, default 30. */
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
  /** The node's address its routes to the subnet's pods use as source (IPv6: the pods' on-link route). */
  source?: string;
  message?: string;
  lastUpdateTime?: string;
  /** Pool addresses this node found answering on the LAN from a MAC no lease has. */
  conflicts?: AddressConflict[];
}

/** An address an agent found in use on the LAN by a host that is not ours. */
export interface AddressConflict {
  ip: string;
  /** The MAC that answered. */
  mac: string;
  /** When the agent first saw it answer. */
  since?: string;
}

export interface MacvlanSubnetStatus {
  conditions?: Condition[];
  observedGeneration?: number;
  /** Usable addresses, a decimal string: an IPv6 /64 overflows int64. */
  total?: string;
  /** Reserved + Bound leases. */
  allocated?: number;
  /** total - allocated - conflicts, a decimal string. */
  free?: string;
  /** Pool addresses in use on the LAN by a host that is not ours (Conflict leases). */
  conflicts?: number;
  /** Per-node readiness, one entry per node, written by that node's agent. */
  nodes?: NodeReadiness[];
}

/** The part of Kubernetes' ObjectMeta that the product reads (a V1ObjectMeta fits). */
export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  creationTimestamp?: Date;
  deletionTimestamp?: Date;
  finalizers?: string[];
}

/** The Kubernetes object envelope (what KFC's GenericKind carries). */
export interface KubernetesObjectEnvelope {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
}

export interface MacvlanSubnet extends KubernetesObjectEnvelope {
  spec?: MacvlanSubnetSpec;
  status?: MacvlanSubnetStatus;
}

export type LeasePhase = "Reserved" | "Bound" | "Released" | "Conflict";
export const LEASE_PHASES: readonly LeasePhase[] = ["Reserved", "Bound", "Released", "Conflict"];

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
  /** The MacvlanSubnet; immutable. */
  subnet: string;
  /** The leased address; immutable. */
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

export interface MacvlanLease extends KubernetesObjectEnvelope {
  spec?: MacvlanLeaseSpec;
  status?: MacvlanLeaseStatus;
}

export const SubnetGVK = {
  group: GROUP,
  version: VERSION,
  kind: "MacvlanSubnet",
  plural: "macvlansubnets",
};
export const LeaseGVK = {
  group: GROUP,
  version: VERSION,
  kind: "MacvlanLease",
  plural: "macvlanleases",
};
