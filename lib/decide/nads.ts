// Which managed NADs a subnet needs, decided over its leases and the namespaces that opted in:
// its own NAD (`macvlan-<subnet>`) in every namespace that uses it, and the NAD of each dual-stack
// pair it is part of (`macvlan-<first>--<second>`) where pods hold addresses of the pair or the
// namespace's labels ask for it. Everything else that names the subnet is pruned.
import { MacvlanLease } from "../../crds/types";
import {
  ANN_LEASE_NAD,
  LABEL_POD_NAMESPACE,
  LABEL_SUBNET,
  LABEL_SUBNET_DUAL,
  dualNadName,
  nadName,
  subnetsOfNadName,
} from "../names";
import { NamespaceInfo } from "../selection";

export interface WantedNad {
  namespace: string;
  /** The NAD's name. */
  name: string;
  /** The subnets it stands for, first the one whose parent and mode it takes. */
  subnets: [string] | [string, string];
}

/** The NADs `subnet` takes part in; namespaces are those labelled for it (either label). */
export function wantedNads(
  subnet: string,
  leases: MacvlanLease[],
  namespaces: NamespaceInfo[],
): WantedNad[] {
  const out = new Map<string, WantedNad>();
  const add = (namespace: string, subnets: [string] | [string, string]) => {
    if (!namespace) return;
    const name = subnets.length === 2 ? dualNadName(subnets[0], subnets[1]) : nadName(subnets[0]);
    out.set(`${namespace}/${name}`, { namespace, name, subnets });
  };
  for (const l of leases) {
    if (l.spec?.subnet !== subnet) continue;
    const ns = l.metadata?.labels?.[LABEL_POD_NAMESPACE] ?? l.spec?.podRef?.namespace ?? "";
    add(ns, [subnet]);
    // A dual-stack lease names the pair's NAD it was leased through (written by admission).
    const pair = subnetsOfNadName(l.metadata?.annotations?.[ANN_LEASE_NAD] ?? "");
    if (pair?.length === 2 && pair.includes(subnet)) add(ns, [pair[0], pair[1]]);
  }
  for (const ns of namespaces) {
    const first = ns.labels[LABEL_SUBNET]?.trim();
    const second = ns.labels[LABEL_SUBNET_DUAL]?.trim();
    if (first === subnet) add(ns.name, [subnet]);
    if (first && second && first !== second && (first === subnet || second === subnet))
      add(ns.name, [first, second]);
  }
  return [...out.values()];
}
