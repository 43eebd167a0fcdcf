// Renders the headless `<svc>-macvlan` Service and its EndpointSlice (design.md §2, expose).
import { LABEL_MANAGED_BY, MANAGED_BY } from "../names";

export const SLICE_MANAGER = "pepr-macvlan.macvlan.dev";

export interface ServiceView {
  name: string;
  namespace: string;
  uid: string;
  selector: Record<string, string>;
  ports: { name?: string; port: number; protocol?: string; targetPort?: number | string }[];
}

export interface PodView {
  name: string;
  namespace: string;
  uid: string;
  labels: Record<string, string>;
  /** The macvlan addresses its Bound leases hold: one, or one per family (dual stack). */
  ips: string[];
  ready: boolean;
  nodeName?: string;
  containerPorts: { name?: string; containerPort: number; protocol?: string }[];
}

export const macvlanServiceName = (svc: string) => `${svc}-macvlan`;

export type AddressType = "IPv4" | "IPv6";
export const ADDRESS_TYPES: readonly AddressType[] = ["IPv4", "IPv6"];

/**
 * One EndpointSlice per family (a slice holds one address type, and it cannot change): IPv4 keeps
 * the twin Service's name, IPv6 gets `-ipv6` after it.
 */
export const sliceName = (svc: string, type: AddressType) =>
  type === "IPv4" ? macvlanServiceName(svc) : `${macvlanServiceName(svc)}-ipv6`;

const typeOf = (ip: string): AddressType => (ip.includes(":") ? "IPv6" : "IPv4");

export function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  const entries = Object.entries(selector);
  return entries.length > 0 && entries.every(([k, v]) => labels[k] === v);
}

function ownerRef(svc: ServiceView) {
  return [
    {
      apiVersion: "v1",
      kind: "Service",
      name: svc.name,
      uid: svc.uid,
      controller: true,
      blockOwnerDeletion: false,
    },
  ];
}

export function renderHeadlessService(svc: ServiceView) {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name: macvlanServiceName(svc.name),
      namespace: svc.namespace,
      labels: { [LABEL_MANAGED_BY]: MANAGED_BY, "macvlan.dev/service": svc.name },
      ownerReferences: ownerRef(svc),
    },
    // No selector: the cluster's EndpointSlice controller would publish eth0 addresses.
    spec: {
      clusterIP: "None",
      ports: svc.ports.map(p => ({
        ...(p.name ? { name: p.name } : {}),
        port: p.port,
        protocol: p.protocol ?? "TCP",
      })),
      publishNotReadyAddresses: false,
    },
  };
}

/** Resolves a Service port's target on one pod: a number, a named container port, or the port. */
function targetPort(port: ServiceView["ports"][number], pod: PodView | undefined): number {
  if (typeof port.targetPort === "number") return port.targetPort;
  if (typeof port.targetPort === "string" && /^\d+$/.test(port.targetPort))
    return Number(port.targetPort);
  if (typeof port.targetPort === "string") {
    const named = pod?.containerPorts.find(c => c.name === port.targetPort);
    if (named) return named.containerPort;
  }
  return port.port;
}

/** The twin's EndpointSlice of one family: the ready selected pods' addresses of that family. */
export function renderEndpointSlice(svc: ServiceView, pods: PodView[], addressType: AddressType) {
  const members = pods
    .filter(
      p =>
        p.namespace === svc.namespace &&
        p.ready &&
        p.ips.some(ip => typeOf(ip) === addressType) &&
        selects(svc.selector, p.labels),
    )
    .sort((x, y) => x.name.localeCompare(y.name));
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      name: sliceName(svc.name, addressType),
      namespace: svc.namespace,
      labels: {
        "kubernetes.io/service-name": macvlanServiceName(svc.name),
        "endpointslice.kubernetes.io/managed-by": SLICE_MANAGER,
        [LABEL_MANAGED_BY]: MANAGED_BY,
      },
      ownerReferences: ownerRef(svc),
    },
    addressType,
    ports: svc.ports.map(p => ({
      ...(p.name ? { name: p.name } : {}),
      port: targetPort(p, members[0]),
      protocol: p.protocol ?? "TCP",
    })),
    endpoints: members.map(p => ({
      addresses: [p.ips.find(ip => typeOf(ip) === addressType)!],
      conditions: { ready: true },
      targetRef: { kind: "Pod", name: p.name, namespace: p.namespace, uid: p.uid },
      ...(p.nodeName ? { nodeName: p.nodeName } : {}),
    })),
  };
}
