// Renders the Multus network selection the pod mutation writes (design.md §2).
import { MacvlanSubnet } from "../../crds/types";
import { dualNadName, nadName } from "../names";
import type { NetworkSelection } from "../multus";

export type { NetworkSelection } from "../multus";

export const MACVLAN_INTERFACE = "net1";

export function prefixLengthOf(cidr: string): number {
  return Number(cidr.split("/")[1]);
}

/**
 * The selection element for a leased address on the subnet's managed NAD in the pod's namespace;
 * dual stack: both addresses on the pair's NAD (lib/names.ts dualNadName), one net1, one MAC.
 */
export function renderSelection(
  subnet: MacvlanSubnet,
  namespace: string,
  ip: string,
  mac: string,
  opts: { singleNic?: boolean; dual?: { subnet: MacvlanSubnet; ip: string } } = {},
): NetworkSelection {
  const parts = [{ subnet, ip }, ...(opts.dual ? [opts.dual] : [])];
  const names = parts.map(p => p.subnet.metadata!.name!);
  const selection: NetworkSelection = {
    name: names.length === 2 ? dualNadName(names[0], names[1]) : nadName(names[0]),
    namespace,
    ...(opts.singleNic ? {} : { interface: MACVLAN_INTERFACE }),
    ips: parts.map(p => `${p.ip}/${prefixLengthOf(p.subnet.spec!.cidr)}`),
    mac,
  };
  const gateways = parts.flatMap(({ subnet: s }) =>
    s.spec!.podDefaultGateway && s.spec!.gateway ? [s.spec!.gateway] : [],
  );
  if (gateways.length && !opts.singleNic) selection["default-route"] = gateways;
  return selection;
}

/** Keeps the user's other networks and puts ours first, replacing any stale copy of it. */
export function mergeSelections(
  existing: NetworkSelection[],
  ours: NetworkSelection,
): NetworkSelection[] {
  return [ours, ...existing.filter(s => !(s.name === ours.name && s.namespace === ours.namespace))];
}
