// Pod admission, decided over a snapshot: which subnet, which request (fixed IPs, MAC, sticky
// owner), or a denial that says what to fix. The capability then leases (the lease create is
// the lock) and writes the annotations rendered here.
import { LeaseOwner, MacvlanLease, MacvlanSubnet } from "../../crds/types";
import { managedReferences, parseNetworks } from "../multus";
import { mergeSelections, renderSelection } from "../render/multus";
import { ownerKey, stickyOwnerOf } from "../owner";
import { NamespaceInfo, namespaceAllowed, requestedSubnets } from "../selection";
import { effectiveParent } from "../validation/parent";
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
  LABEL_SUBNET_DUAL,
  dualNadName,
  nadName,
  subnetsOfNadName,
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

/** One family's part of a lease request: the subnet and the fixed IPs asked for in it. */
export interface FamilyRequest {
  subnet: MacvlanSubnet;
  /** Fixed IPs to choose from, in order; empty: any free address of the pool. */
  fixedIps: string[];
}

export interface LeaseRequestPlan extends FamilyRequest {
  kind: "lease";
  /** A fixed MAC (canonical), else derived from subnet and IP. */
  mac?: string;
  owner?: LeaseOwner;
  singleNic: boolean;
  /** Dual stack: the other family's subnet, leased on the same net1 with the same MAC. */
  dual?: FamilyRequest;
}

export type AdmissionPlan = { kind: "skip" } | { kind: "deny"; message: string } | LeaseRequestPlan;

const deny = (message: string): AdmissionPlan => ({ kind: "deny", message });

/** Every pod, opted in or not, goes through the bypass check; only opted-in ones are leased. */
/**
 * A refusal whose message is for the user as it stands; `reason` is its metrics label when the
 * wording alone would not give it (an IPAM error re-worded for the annotation that asked).
 */
export class Refusal extends Error {
  constructor(
    message: string,
    readonly reason?: string,
  ) {
    super(message);
  }
}

export function planAdmission(s: AdmissionSnapshot): AdmissionPlan {
  const annotations = s.pod.metadata?.annotations ?? {};
  const bypass = bypassRefusal(annotations, s.namespace, s.subnets);
  if (bypass) return deny(bypass);
  const names = s.namespaceInfo ? requestedSubnets(annotations, s.namespaceInfo) : [];
  if (!names.length) return { kind: "skip" };
  const chosen = chooseSubnets(names, s);
  if (typeof chosen === "string") return deny(chosen);
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
  const [subnet, dual] = chosen;
  // Dual stack: each fixed IP goes to the subnet of its family.
  const ofFamily = (sub: MacvlanSubnet) =>
    dual ? fixedIps.filter(ip => familyOfIp(ip) === familyOf(sub)) : fixedIps;
  return {
    kind: "lease",
    subnet,
    fixedIps: ofFamily(subnet),
    ...(dual ? { dual: { subnet: dual, fixedIps: ofFamily(dual) } } : {}),
    mac,
    owner: stickyOwnerOf(s.pod, s.namespace),
    singleNic: annotations[ANN_SINGLE_NIC] === "true",
  };
}

const familyOf = (subnet: MacvlanSubnet) => (subnet.spec?.cidr?.includes(":") ? 6 : 4);
const familyOfIp = (ip: string) => (ip.includes(":") ? 6 : 4);

/** The subnets named, checked (exist, usable by the namespace, a valid pair); or the refusal. */
function chooseSubnets(
  names: string[],
  s: AdmissionSnapshot,
): [MacvlanSubnet] | [MacvlanSubnet, MacvlanSubnet] | string {
  if (names.length > 2 || names.some(n => !n) || new Set(names).size < names.length) {
    return (
      `${ANN_SUBNET} "${names.join(",")}" must name one subnet, or two of different IP families ` +
      `for dual stack (e.g. "lan,lan6")`
    );
  }
  const subnets: MacvlanSubnet[] = [];
  for (const name of names) {
    const subnet = s.subnets.get(name);
    const refusal = subnetRefusal(name, subnet, s);
    if (refusal) return refusal;
    subnets.push(subnet!);
  }
  if (subnets.length === 1) return [subnets[0]];
  const [a, b] = subnets;
  const pairProblem = dualPairProblem(a, b);
  return pairProblem
    ? `dual stack on MacvlanSubnets "${names[0]}" and "${names[1]}": ${pairProblem}`
    : [a, b];
}

function subnetRefusal(
  name: string,
  subnet: MacvlanSubnet | undefined,
  s: AdmissionSnapshot,
): string | undefined {
  if (!subnet?.spec) {
    return (
      `MacvlanSubnet "${name}" (asked for by namespace "${s.namespace}" or the pod's ${ANN_SUBNET} annotation) ` +
      `does not exist: create it (kubectl get mvs lists them) or fix the ${LABEL_SUBNET} / ${LABEL_SUBNET_DUAL} label or annotation`
    );
  }
  if (subnet.metadata?.deletionTimestamp)
    return `MacvlanSubnet "${name}" is being deleted: no new addresses are handed out from it`;
  if (!namespaceAllowed(subnet, s.namespaceInfo!)) {
    return (
      `namespace "${s.namespace}" may not use MacvlanSubnet "${name}": add it to spec.namespaces or ` +
      `match spec.namespaceSelector of the subnet, or pick another subnet with the ${ANN_SUBNET} annotation`
    );
  }
  return undefined;
}

/** Why two subnets cannot share one net1 (the first one's NAD settings are used), if they cannot. */
export function dualPairProblem(a: MacvlanSubnet, b: MacvlanSubnet): string | undefined {
  if (familyOf(a) === familyOf(b))
    return `both are IPv${familyOf(a)}: name one IPv4 and one IPv6 subnet`;
  const pa = effectiveParent(a.spec!);
  const pb = effectiveParent(b.spec!);
  if (pa !== pb) return `they are on different parents (${pa}, ${pb}): one net1 has one parent`;
  const nad = dualNadName(a.metadata!.name!, b.metadata!.name!);
  if (nad.length > 63)
    return `the pair's NAD name ${nad} is longer than the 63 characters Multus takes: use shorter subnet names`;
  if ((a.spec!.mode ?? "bridge") !== (b.spec!.mode ?? "bridge"))
    return `their macvlan modes differ (${a.spec!.mode ?? "bridge"}, ${b.spec!.mode ?? "bridge"})`;
  if (a.spec!.mtu !== b.spec!.mtu)
    return `their MTUs differ (${a.spec!.mtu ?? "default"}, ${b.spec!.mtu ?? "default"})`;
  return undefined;
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
  // A dual-stack NAD (`macvlan-<subnet>--<other>`) is managed too: it takes `ips` the same way.
  const managedSubnet = (name: string) =>
    managedNames.get(name) ?? subnetsOfNadName(name)?.find(n => subnets.has(n));
  const { refs, unparseable } = managedReferences(
    annotations,
    namespace,
    (_ns, name) => managedSubnet(name) !== undefined,
  );
  if (refs.length) {
    const ref = refs[0];
    const subnet = managedSubnet(ref.name)!;
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

/**
 * The annotations admission writes on the pod for its lease (and, dual stack, the other family's
 * lease: same MAC, same token, listed second).
 */
export function podAnnotationsFor(
  plan: LeaseRequestPlan,
  lease: MacvlanLease,
  namespace: string,
  existingNetworks: string | undefined,
  dualLease?: MacvlanLease,
): Record<string, string> {
  const { ip, mac } = lease.spec!;
  const dual =
    plan.dual && dualLease ? { subnet: plan.dual.subnet, ip: dualLease.spec!.ip } : undefined;
  const ours = renderSelection(plan.subnet, namespace, ip, mac, {
    singleNic: plan.singleNic,
    dual,
  });
  const parsed = parseNetworks(existingNetworks, namespace);
  const existing = parsed.ok ? parsed.selections : [];
  const names = [plan.subnet.metadata!.name!, ...(dual ? [dual.subnet.metadata!.name!] : [])];
  const out: Record<string, string> = {
    [ANN_SUBNET]: names.join(","),
    [ANN_IP]: [ip, ...(dual ? [dual.ip] : [])].join(","),
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
