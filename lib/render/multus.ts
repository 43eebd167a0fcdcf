// Renders the Multus network selection the pod mutation writes (design.md §2).
import { MacvlanSubnet } from "../../crds/types";
import { nadName } from "../names";
import type { NetworkSelection } from "../multus";

export type { NetworkSelection } from "../multus";

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

/** Keeps the user's other networks and puts ours first, replacing any stale copy of it. */
export function mergeSelections(
  existing: NetworkSelection[],
  ours: NetworkSelection,
): NetworkSelection[] {
  return [ours, ...existing.filter(s => !(s.name === ours.name && s.namespace === ours.namespace))];
}
