// Labels, annotations and names fixed by the API contract (design.md §2).
export const LABEL_SUBNET = "macvlan.dev/subnet";
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
export const ANN_MULTUS_NETWORKS = "k8s.v1.cni.cncf.io/networks";
export const ANN_MULTUS_DEFAULT = "v1.multus-cni.io/default-network";
export const ANN_NETWORK_STATUS = "k8s.v1.cni.cncf.io/network-status";

export const SUBNET_FINALIZER = "macvlan.dev/leases";

/** The managed NetworkAttachmentDefinition for a subnet, in each namespace that uses it. */
export const nadName = (subnet: string) => `macvlan-${subnet}`;
