// What the lease metrics measure, decided over lease changes and snapshots (pure; the caller
// observes the results): time from Reserved to Bound, time from release to the address's next
// lease, per-subnet usage, conflicts and leases by phase, and the reason label of a denial.
import { LEASE_PHASES, MacvlanLease, MacvlanSubnet } from "../crds/types";
import { IpamErrorCode, isIpamError } from "../lib/ipam";
import { Refusal } from "../lib/decide/admit";
import { summarizeSubnet, leasesBySubnet } from "../cli/subnets";

type Phase = "ADDED" | "MODIFIED" | "DELETED";

export interface LeaseTiming {
  /** Seconds from reservation to Bound. */
  bind?: number;
  /** Seconds from the address's release to this lease. */
  reuse?: number;
}

const ms = (t: Date | string | undefined) => (t === undefined ? NaN : new Date(t).getTime());

/**
 * Follows lease changes as a watch shows them. A lease is named after its address, so a lease
 * created under the name of a Released one that was deleted is the address's reuse; a Released
 * lease taken over (compare-and-swap back to Reserved) is one too. Remembers at most `limit`
 * release times (the oldest go first).
 */
export class LeaseTimes {
  readonly #releasedAt = new Map<string, number>();
  constructor(private readonly limit = 65536) {}

  onChange(
    lease: MacvlanLease,
    phase: Phase,
    previous: MacvlanLease | undefined,
    nowMs: number,
  ): LeaseTiming {
    const name = lease.metadata?.name ?? "";
    const now = lease.status?.phase;
    const before = previous?.status?.phase;
    if (phase === "DELETED") {
      const at = ms(lease.status?.releasedAt);
      if (now === "Released" && Number.isFinite(at)) this.#remember(name, at);
      return {};
    }
    const out: LeaseTiming = {};
    if (phase === "MODIFIED" && now === "Bound" && before !== "Bound") {
      const start = ms(lease.status?.reservedAt ?? lease.metadata?.creationTimestamp);
      if (Number.isFinite(start)) out.bind = Math.max(0, (nowMs - start) / 1000);
    }
    let releasedAt: number | undefined;
    if (phase === "ADDED" && now !== "Released") releasedAt = this.#releasedAt.get(name);
    if (phase === "MODIFIED" && before === "Released" && now !== "Released")
      releasedAt = ms(previous?.status?.releasedAt);
    if (releasedAt !== undefined && Number.isFinite(releasedAt)) {
      out.reuse = Math.max(0, (nowMs - releasedAt) / 1000);
      this.#releasedAt.delete(name);
    }
    return out;
  }

  #remember(name: string, at: number) {
    this.#releasedAt.delete(name);
    this.#releasedAt.set(name, at);
    if (this.#releasedAt.size > this.limit)
      this.#releasedAt.delete(this.#releasedAt.keys().next().value!);
  }
}

export interface SubnetSample {
  subnet: string;
  total: number;
  allocated: number;
  free: number;
  conflicts: number;
  phases: Record<(typeof LEASE_PHASES)[number], number>;
}

/** Per-subnet gauges from a snapshot, counted by the product's allocator (a /64 reads as a double). */
export function subnetSamples(
  subnets: MacvlanSubnet[],
  leases: MacvlanLease[],
  now: Date,
): SubnetSample[] {
  const by = leasesBySubnet(leases);
  return subnets.map(s => {
    const sum = summarizeSubnet(s, by.get(s.metadata?.name ?? "") ?? [], now);
    return {
      subnet: sum.name,
      total: Number(sum.total),
      allocated: sum.allocated,
      free: Number(sum.free),
      conflicts: sum.conflicts.length,
      phases: sum.phases,
    };
  });
}

const DENIAL_REASONS: [RegExp, string][] = [
  [/does not exist: create it/, "SubnetMissing"],
  [/is being deleted/, "SubnetDeleting"],
  [/may not use MacvlanSubnet/, "NamespaceNotAllowed"],
  [/names the managed network|mentions a managed macvlan network/, "Bypass"],
  [/annotation cannot be read/, "BadAnnotation"],
  [/macvlan\.dev\/mac/, "BadMac"],
  [/is busy/, "Busy"],
  [/is starting/, "Starting"],
  [/already taken|is free on MacvlanSubnet/, "Taken"],
];

/** Every reason denialReason can give: the IPAM error codes, the messages' reasons, the rest. */
export const DENIAL_REASON_NAMES: string[] = [
  ...new Set([
    ...(["OutsidePool", "Taken", "Cooling", "Exhausted", "Invalid"] satisfies IpamErrorCode[]),
    ...DENIAL_REASONS.map(([, r]) => r),
    "ApiError",
    "Other",
  ]),
];

/** A low-cardinality reason for a refused admission: the IPAM error's code, else by message. */
export function denialReason(e: unknown, message: string): string {
  if (isIpamError(e)) return e.code;
  if (e instanceof Refusal && e.reason) return e.reason;
  for (const [re, reason] of DENIAL_REASONS) if (re.test(message)) return reason;
  return /could not lease an address/.test(message) ? "ApiError" : "Other";
}

/** The kinds of repair in a resync's plan: the reasons of the Events its writes record. */
export function repairKinds(groups: { op: string; reason?: string }[][]): string[] {
  return groups.flatMap(g => g.flatMap(w => (w.op === "event" && w.reason ? [w.reason] : [])));
}
