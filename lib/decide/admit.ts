// Pod admission, decided over a snapshot: which subnet, which request (fixed IPs, MAC, sticky
// owner), or a denial that says what to fix. The capability then leases (the lease create is
// the lock) and writes the annotations rendered here.
import { LeaseOwner, MacvlanLease, MacvlanSubnet } from "../../crds/types";
import { managedReferences, parseNetworks } from "../multus";
import { mergeSelections, renderSelection } from "../render/multus";
import { ownerKey, stickyOwnerOf } from "../owner";
import { NamespaceInfo, namespaceAllowed, requestedSubnet } from "../selection";
import { parseUnicastMac } from "../ipam";
import {
  ANN_IP,
  ANN_MAC,
  ANN_MULTUS_DEFAULT,
  ANN_MULTUS_NETWORKS,
  ANN_RESERVATION,
  ANN_SINGLE_NIC,
  ANN_SUBNET,
  LABEL_SUBNET,
  nadName,
} from "../names";
import { PodSnapshot } from "./pods";
import { Write } from "./writes";

export interface AdmissionSnapshot {
  pod: PodSnapshot;
  /** The namespace the request is for (a pod's own metadata may lack it at CREATE). */
  namespace: string;
  /** Its labels; undefined when the namespace does not exist. */
  namespaceInfo?: NamespaceInfo;
  /** Every MacvlanSubnet, by name. */
  subnets: ReadonlyMap<string, MacvlanSubnet>;
}

export interface LeaseRequestPlan {
  kind: "lease";
  subnet: MacvlanSubnet;
  /** Fixed IPs to choose from, in order; empty: any free address of the pool. */
  fixedIps: string[];
  /** A fixed MAC (canonical), else derived from subnet and IP. */
  mac?: string;
  owner?: LeaseOwner;
  singleNic: boolean;
}

export type AdmissionPlan = { kind: "skip" } | { kind: "deny"; message: string } | LeaseRequestPlan;

const deny = (message: string): AdmissionPlan => ({ kind: "deny", message });

/** Every pod, opted in or not, goes through the bypass check; only opted-in ones are leased. */
export function planAdmission(s: AdmissionSnapshot): AdmissionPlan {
  const annotations = s.pod.metadata?.annotations ?? {};
  const bypass = bypassRefusal(annotations, s.namespace, s.subnets);
  if (bypass) return deny(bypass);
  const subnetName = s.namespaceInfo && requestedSubnet(annotations, s.namespaceInfo);
  if (!subnetName) return { kind: "skip" };
  const subnet = s.subnets.get(subnetName);
  if (!subnet?.spec) {
    return deny(
      `MacvlanSubnet "${subnetName}" (asked for by namespace "${s.namespace}" or the pod's ${ANN_SUBNET} annotation) ` +
        `does not exist: create it (kubectl get mvs lists them) or fix the ${LABEL_SUBNET} label / annotation`,
    );
  }
  if (subnet.metadata?.deletionTimestamp)
    return deny(
      `MacvlanSubnet "${subnetName}" is being deleted: no new addresses are handed out from it`,
    );
  if (!namespaceAllowed(subnet, s.namespaceInfo!)) {
    return deny(
      `namespace "${s.namespace}" may not use MacvlanSubnet "${subnetName}": add it to spec.namespaces or ` +
        `match spec.namespaceSelector of the subnet, or pick another subnet with the ${ANN_SUBNET} annotation`,
    );
  }
  const networks = parseNetworks(annotations[ANN_MULTUS_NETWORKS], s.namespace);
  if (!networks.ok) {
    return deny(
      `the pod's ${ANN_MULTUS_NETWORKS} annotation cannot be read (${networks.error}): ` +
        `pepr-macvlan must add net1 to it; fix the annotation`,
    );
  }
  let mac: string | undefined;
  const macText = annotations[ANN_MAC]?.trim();
  if (macText) {
    const parsed = parseUnicastMac(macText);
    if (!parsed.ok) return deny(`${ANN_MAC}: ${parsed.error}`);
    mac = parsed.mac;
  }
  const fixedIps = (annotations[ANN_IP] ?? "")
    .split(",")
    .map(ip => ip.trim())
    .filter(Boolean);
  return {
    kind: "lease",
    subnet,
    fixedIps,
    mac,
    owner: stickyOwnerOf(s.pod, s.namespace),
    singleNic: annotations[ANN_SINGLE_NIC] === "true",
  };
}

/**
 * A pod that names a managed NAD itself (in either Multus annotation, any namespace, any spelling
 * Multus accepts) would get an address no lease protects: the managed NAD takes `ips` from the
 * selection. Admission always replaces what the user wrote, so any such reference is refused.
 */
function bypassRefusal(
  annotations: Record<string, string>,
  namespace: string,
  subnets: ReadonlyMap<string, MacvlanSubnet>,
): string | undefined {
  const managedNames = new Map([...subnets.keys()].map(name => [nadName(name), name]));
  const { refs, unparseable } = managedReferences(annotations, namespace, (_ns, name) =>
    managedNames.has(name),
  );
  if (refs.length) {
    const ref = refs[0];
    const subnet = managedNames.get(ref.name)!;
    return (
      `the pod names the managed network "${ref.namespace}/${ref.name}" in ${ref.annotation}: ` +
      `remove it and let pepr-macvlan lease the address (set ${ANN_SUBNET}: ${subnet} ` +
      `on the pod or label namespace "${namespace}"; use ${ANN_IP} for a fixed IP)`
    );
  }
  // Multus refuses what it cannot parse, so such an annotation attaches nothing; but one that
  // mentions a managed network is refused here too (fail closed on a parser disagreement).
  const suspicious = unparseable.find(u =>
    [...managedNames.keys()].some(n => annotations[u.annotation]?.toLowerCase().includes(n)),
  );
  if (suspicious) {
    return (
      `the pod's ${suspicious.annotation} annotation mentions a managed macvlan network and cannot be read ` +
      `(${suspicious.error}): remove it and let pepr-macvlan lease the address`
    );
  }
  return undefined;
}

/** The annotations admission writes on the pod for its lease. */
export function podAnnotationsFor(
  plan: LeaseRequestPlan,
  lease: MacvlanLease,
  namespace: string,
  existingNetworks: string | undefined,
): Record<string, string> {
  const { ip, mac } = lease.spec!;
  const ours = renderSelection(plan.subnet, namespace, ip, mac, { singleNic: plan.singleNic });
  const parsed = parseNetworks(existingNetworks, namespace);
  const existing = parsed.ok ? parsed.selections : [];
  const out: Record<string, string> = {
    [ANN_SUBNET]: plan.subnet.metadata!.name!,
    [ANN_IP]: ip,
    [ANN_MAC]: mac,
    [ANN_RESERVATION]: lease.metadata!.annotations![ANN_RESERVATION],
  };
  if (plan.singleNic) {
    // Multus' default network replaces the cluster network: macvlan is the pod's only NIC.
    out[ANN_MULTUS_DEFAULT] = JSON.stringify([ours]);
    if (existing.length) out[ANN_MULTUS_NETWORKS] = JSON.stringify(existing);
  } else {
    out[ANN_MULTUS_NETWORKS] = JSON.stringify(mergeSelections(existing, ours));
  }
  return out;
}

/**
 * A StatefulSet pod takes its ordinal's lease back, on the same subnet, by a compare-and-swap
 * on the lease: two replicas admitting the same pod cannot both take it. A lease of the ordinal
 * on another subnet is left to the resync, which releases it as superseded.
 */
export function takeoverWrites(
  held: MacvlanLease | undefined,
  owner: LeaseOwner,
  subnet: string,
  podName: string | undefined,
  token: string,
): Write[] {
  if (!held || held.spec?.subnet !== subnet || held.status?.phase === "Released") return [];
  if (ownerKey(held.spec.owner ?? owner) !== ownerKey(owner)) return [];
  return [
    {
      op: "patchLease",
      lease: {
        name: held.metadata!.name!,
        uid: held.metadata?.uid,
        resourceVersion: held.metadata?.resourceVersion,
      },
      spec: {
        podRef: { namespace: owner.namespace, ...(podName ? { name: podName } : {}) },
        owner,
      },
      annotations: { ...held.metadata?.annotations, [ANN_RESERVATION]: token },
    },
  ];
}
