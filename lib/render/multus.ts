// Renders the Multus network selection the pod mutation writes (design.md §2).
import { MacvlanSubnet } from "../../crds/types";
import { nadName } from "../names";

export interface NetworkSelection {
  name: string;
  namespace: string;
  interface?: string;
  ips?: string[];
  mac?: string;
  "default-route"?: string[];
}

export const MACVLAN_INTERFACE = "net1";

export function prefixLengthOf(cidr: string): number {
  return Number(cidr.split("/")[1]);
}

/** The selection element for a leased address on the subnet's managed NAD in the pod's namespace. */
export function renderSelection(
  subnet: MacvlanSubnet,
  namespace: string,
  ip: string,
  mac: string,
  opts: { singleNic?: boolean } = {},
): NetworkSelection {
  const spec = subnet.spec!;
  const selection: NetworkSelection = {
    name: nadName(subnet.metadata!.name!),
    namespace,
    ...(opts.singleNic ? {} : { interface: MACVLAN_INTERFACE }),
    ips: [`${ip}/${prefixLengthOf(spec.cidr)}`],
    mac,
  };
  if (spec.podDefaultGateway && spec.gateway && !opts.singleNic) {
    selection["default-route"] = [spec.gateway];
  }
  return selection;
}

/** Parses the pod's `k8s.v1.cni.cncf.io/networks` annotation: JSON list or `ns/name@if` shorthand. */
export function parseSelections(
  annotation: string | undefined,
  podNamespace: string,
): NetworkSelection[] {
  if (!annotation || !annotation.trim()) return [];
  const text = annotation.trim();
  if (text.startsWith("[") || text.startsWith("{")) {
    const parsed: unknown = JSON.parse(text);
    const list = Array.isArray(parsed) ? parsed : [parsed];
    return list.map(item => {
      const sel = item as NetworkSelection;
      if (typeof sel?.name !== "string") throw new Error("every network selection needs a name");
      return { ...sel, namespace: sel.namespace || podNamespace };
    });
  }
  return text.split(",").map(entry => {
    const [ref, iface] = entry.trim().split("@");
    const [ns, name] = ref.includes("/") ? ref.split("/") : [podNamespace, ref];
    return { name, namespace: ns, ...(iface ? { interface: iface } : {}) };
  });
}

/** Keeps the user's other networks and puts ours first, replacing any stale copy of it. */
export function mergeSelections(
  existing: NetworkSelection[],
  ours: NetworkSelection,
): NetworkSelection[] {
  return [ours, ...existing.filter(s => !(s.name === ours.name && s.namespace === ours.namespace))];
}
