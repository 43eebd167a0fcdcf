// `kubectl macvlan free <subnet> [N]`: the addresses admission would hand out next, in its order:
// first the admission replicas' pre-leased pool addresses (any pod without a fixed IP or MAC gets
// one of those, from the replica that serves its request), then what the product's allocator
// proposes (lib/decide/allocators.ts, the one admission uses): fresh addresses, then released
// ones past their reuse delay, least recently released first.
import { allocatorFromLeases } from "../lib/decide/allocators";
import { ANN_POOL_OWNER, isOrphaned, isPoolLease, parseOwner } from "../lib/decide/pool";
import { isIpamError, IpState } from "../lib/ipam";
import { Column } from "./format";
import { compareIps } from "./leases";
import { MacvlanLease, MacvlanSubnet } from "./snapshot";

export interface FreeAddress {
  ip: string;
  /** "pool": pre-leased by a replica; "fresh": never used; "reused": released, delay passed. */
  source: "pool" | "fresh" | "reused";
  /** The replica (namespace/pod) holding a pool address. */
  replica?: string;
}

export interface FreeReport {
  subnet: string;
  total: string;
  free: string;
  /** Released addresses still in their reuse delay (free, but not handed out yet). */
  cooling: number;
  addresses: FreeAddress[];
  /** Why the list ends before N, e.g. the subnet is exhausted. */
  end?: string;
  note: string;
}

export type ScanStart = "lowest" | "random";

export function nextFree(
  subnet: MacvlanSubnet,
  leases: MacvlanLease[],
  n: number,
  now: Date,
  scan: ScanStart = "random",
): FreeReport {
  const pool = leases
    .filter(l => isPoolLease(l) && !isOrphaned(l))
    .map(l => ({
      ip: l.spec!.ip,
      source: "pool" as const,
      replica: ownerName(l),
    }))
    .sort((a, b) => compareIps(a.ip, b.ip));
  // Lowest first: a deterministic list. Admission itself starts at a random address by default
  // (MACVLAN_SCAN_START), so its fresh picks are any of these, the order below is not a promise.
  const picker = allocatorFromLeases(subnet, leases, { scan: "lowest" });
  const before = allocatorFromLeases(subnet, leases, { scan: "lowest" });
  const addresses: FreeAddress[] = pool.slice(0, n);
  let end: string | undefined;
  while (addresses.length < n) {
    try {
      const ip = picker.next(now);
      addresses.push({ ip, source: sourceOf(before.stateOf(ip, now)) });
    } catch (e) {
      if (!isIpamError(e)) throw e;
      end = e.message;
      break;
    }
  }
  const cooling = leases.filter(
    l => l.status?.phase === "Released" && before.stateOf(l.spec!.ip, now) === "cooling",
  ).length;
  return {
    subnet: subnet.metadata!.name!,
    total: before.total.toString(),
    free: before.free.toString(),
    cooling,
    addresses,
    end,
    note:
      (pool.length
        ? `${pool.length} pre-leased address(es) go first, to pods without ${"macvlan.dev/ip"}/${"macvlan.dev/mac"}; `
        : "") +
      (scan === "random"
        ? "fresh addresses: admission starts at a random one (MACVLAN_SCAN_START=random), listed lowest first"
        : "fresh addresses lowest first (MACVLAN_SCAN_START=lowest)"),
  };
}

const sourceOf = (state: IpState): FreeAddress["source"] =>
  state === "reusable" ? "reused" : "fresh";

function ownerName(l: MacvlanLease): string | undefined {
  const o = parseOwner(l.metadata?.annotations?.[ANN_POOL_OWNER]);
  return o && `${o.namespace}/${o.pod}`;
}

export const freeColumns: Column<FreeAddress>[] = [
  { header: "IP", value: a => a.ip },
  { header: "SOURCE", value: a => (a.replica ? `pool of ${a.replica}` : a.source) },
];
