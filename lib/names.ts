// Labels, annotations and names fixed by the API contract (design.md §2).
export const LABEL_SUBNET = "macvlan.dev/subnet";
/** Namespace label: the other family's subnet of a dual-stack pair (label values hold no comma). */
export const LABEL_SUBNET_DUAL = "macvlan.dev/subnet-dual";
export const LABEL_POD_NAMESPACE = "macvlan.dev/pod-namespace";
export const LABEL_MANAGED_BY = "app.kubernetes.io/managed-by";
export const MANAGED_BY = "pepr-macvlan";

export const ANN_SUBNET = "macvlan.dev/subnet";
export const ANN_IP = "macvlan.dev/ip";
export const ANN_MAC = "macvlan.dev/mac";
export const ANN_SINGLE_NIC = "macvlan.dev/single-nic";
export const ANN_EXPOSE = "macvlan.dev/expose";
/** Written by admission on the pod and its lease: the binding's proof of ownership. */
export const ANN_RESERVATION = "macvlan.dev/reservation";
/** On a dual-stack pair's leases: the pair's NAD the pod's net1 was attached through. */
export const ANN_LEASE_NAD = "macvlan.dev/nad";
export const ANN_MULTUS_NETWORKS = "k8s.v1.cni.cncf.io/networks";
export const ANN_MULTUS_DEFAULT = "v1.multus-cni.io/default-network";
export const ANN_NETWORK_STATUS = "k8s.v1.cni.cncf.io/network-status";

export const SUBNET_FINALIZER = "macvlan.dev/leases";

/** The managed NetworkAttachmentDefinition for a subnet, in each namespace that uses it. */
export const nadName = (subnet: string) => `macvlan-${subnet}`;

/**
 * The managed NAD of a dual-stack pair: `macvlan-<first>--<second>`. Multus takes only DNS-1123
 * labels as network names (no '.'), and new subnet names may not hold "--", so it is no single
 * subnet's NAD name. It carries both subnets' routes on one net1.
 */
export const dualNadName = (first: string, second: string) => `macvlan-${first}${PAIR}${second}`;
export const PAIR = "--";

/** The subnets a managed NAD name stands for (one, or a dual-stack pair); undefined if none. */
export function subnetsOfNadName(name: string): string[] | undefined {
  const prefix = nadName("");
  if (!name.startsWith(prefix) || name.length === prefix.length) return undefined;
  const parts = name.slice(prefix.length).split(PAIR);
  return parts.length <= 2 && parts.every(Boolean) ? parts : undefined;
}
