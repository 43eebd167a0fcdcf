// A pod's macvlan networking as the plugin reads it: the family of a subnet, and the Multus
// network-status entries (the one of a managed NAD: a subnet's, or a dual-stack pair's, which
// carries the addresses of both subnets on one net1). `why` and `doctor` both read it here.
import { ANN_NETWORK_STATUS, subnetsOfNadName } from "../lib/names";
import { tryParseIp } from "../lib/ipam";
import { MacvlanSubnet, Pod } from "./snapshot";

export interface StatusEntry {
  name?: string;
  interface?: string;
  ips?: string[];
  mac?: string;
}

export type NetworkStatus =
  | { kind: "absent" }
  | { kind: "invalid" }
  | { kind: "entries"; entries: StatusEntry[] };

/** The pod's network-status annotation: absent, not a JSON array, or its entries. */
export function networkStatusOf(pod: Pod): NetworkStatus {
  const raw = pod.metadata?.annotations?.[ANN_NETWORK_STATUS];
  if (!raw) return { kind: "absent" };
  try {
    const v: unknown = JSON.parse(raw);
    if (!Array.isArray(v)) return { kind: "invalid" };
    const entries = v.filter((e): e is StatusEntry => !!e && typeof e === "object");
    return { kind: "entries", entries };
  } catch {
    return { kind: "invalid" };
  }
}

export const ipOnly = (cidr: string) => cidr.split("/")[0];

/** The addresses of an entry, without prefix lengths. */
export const entryIps = (e: StatusEntry | undefined) => (e?.ips ?? []).map(ip => ipOnly(ip));

/** The entry of the managed network in the pod's namespace that carries `subnet`'s addresses. */
export function entryServing(
  entries: StatusEntry[],
  namespace: string,
  subnet: string,
): StatusEntry | undefined {
  return entries.find(e => {
    const [ns, nad] = (e.name ?? "").split("/", 2);
    return ns === namespace && !!nad && !!subnetsOfNadName(nad)?.includes(subnet);
  });
}

/** "IPv4" or "IPv6", from the subnet's CIDR ("" when it cannot be read). */
export function familyOf(subnet: MacvlanSubnet | undefined): string {
  const ip = tryParseIp(ipOnly(subnet?.spec?.cidr ?? ""));
  return ip ? `IPv${ip.family}` : "";
}

/** Whether `ips` hold `ip` (compared as addresses: an IPv6 address may be written two ways). */
export function hasIp(ips: string[], ip: string): boolean {
  const want = tryParseIp(ip);
  if (!want) return ips.includes(ip);
  return ips.some(x => {
    const p = tryParseIp(ipOnly(x));
    return p?.family === want.family && p.value === want.value;
  });
}
