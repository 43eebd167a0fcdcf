// The allocator of one subnet. It is a cache of the MacvlanLease objects, not the truth:
// the operator rebuilds it from leases, asks it for a candidate, creates the lease (the
// deterministic lease name is the lock) and, on AlreadyExists, calls markAllocated and asks
// again. Every address of the usable set is in exactly one state:
//   free      - no lease: in `fresh`, handed out lowest first;
//   allocated - a Reserved or Bound lease: in `held`;
//   cooling   - a Released lease: in `releasedAt` + `queue`, reusable after the reuse delay,
//               least recently released first (stale ARP caches on the LAN expire meanwhile).
// Leases outside the usable set are tracked apart (`outside`) and never handed out.
import { ParsedIp, bigIntToIp, compareBigInt, isIpv4Mapped, tryParseIp } from "./address";
import { IpamError } from "./errors";
import { leaseName } from "./identity";
import { IntervalSet, subtract, pointsToIntervals } from "./intervals";
import { PoolSpec, UsablePool } from "./pool";
import { LABEL_SUBNET } from "../names";

export type LeasePhase = "Reserved" | "Bound" | "Released";

/** What the allocator needs from a MacvlanLease. */
export interface LeaseRecord {
  ip: string;
  /** Missing (status not written yet) counts as Reserved. */
  phase?: LeasePhase;
  releasedAt?: Date | string | number;
}

export interface AllocatorSpec extends PoolSpec {
  reuseDelaySeconds?: number;
}

export interface RebuildReport {
  /** Reserved/Bound leases whose IP is not in the usable set (counted in allocatedOutside). */
  outside: string[];
  /** Lease IPs that do not parse; ignored. */
  invalid: string[];
  /** IPs with more than one lease; the strongest state wins (allocated over released). */
  duplicates: string[];
}

export type IpState = "free" | "allocated" | "cooling" | "reusable" | "outside";

/** A point in time: a Date or epoch milliseconds. */
export type Clock = Date | number;

// The CRD default (crds/types.ts DEFAULT_REUSE_DELAY_SECONDS); repeated here because that
// module imports the Kubernetes client and this engine must not.
const DEFAULT_REUSE_DELAY_SECONDS = 30;

function toMs(t: Clock | string): number {
  const ms = t instanceof Date ? t.getTime() : typeof t === "string" ? Date.parse(t) : t;
  if (typeof ms !== "number" || !Number.isFinite(ms))
    throw new TypeError(`invalid time: ${String(t)}`);
  return ms;
}

const iso = (ms: number) => new Date(ms).toISOString();

export class SubnetAllocator {
  readonly subnet: string;
  readonly pool: UsablePool;
  readonly reuseDelaySeconds: number;
  private readonly delayMs: number;

  private fresh: IntervalSet;
  private readonly held = new Set<bigint>();
  private readonly releasedAt = new Map<bigint, number>();
  // Cooling addresses by release time, as parallel arrays read from qHead. Entries whose
  // time no longer matches `releasedAt` are stale and skipped (lazy deletion).
  private qIp: bigint[] = [];
  private qAt: number[] = [];
  private qHead = 0;
  private readonly outside = new Set<string>();

  /** Throws IpamError "Invalid" for a malformed spec. */
  constructor(subnet: string, spec: AllocatorSpec) {
    this.subnet = subnet;
    this.pool = new UsablePool(subnet, spec);
    const delay = spec.reuseDelaySeconds ?? DEFAULT_REUSE_DELAY_SECONDS;
    if (typeof delay !== "number" || !Number.isFinite(delay) || delay < 0) {
      throw new IpamError(
        "Invalid",
        `subnet "${subnet}": spec.reuseDelaySeconds must be a number >= 0, got ${String(delay)}`,
        { subnet },
      );
    }
    this.reuseDelaySeconds = delay;
    this.delayMs = delay * 1000;
    this.fresh = new IntervalSet(this.pool.intervals);
  }

  /** Usable addresses (status.total). */
  get total(): bigint {
    return this.pool.total;
  }

  /** Reserved + Bound leases inside the usable set (status.allocated). */
  get allocated(): number {
    return this.held.size;
  }

  /** Usable addresses without a Reserved/Bound lease, cooling ones included (status.free). */
  get free(): bigint {
    return this.pool.total - BigInt(this.held.size);
  }

  /** Released addresses still known (cooling or reusable); part of `free`. */
  get releasedCount(): number {
    return this.releasedAt.size;
  }

  /** Reserved/Bound leases on addresses outside the usable set; not part of the counters above. */
  get allocatedOutside(): number {
    return this.outside.size;
  }

  /** The counters as MacvlanSubnet status carries them (bigints as decimal strings). */
  counters(): { total: string; allocated: number; free: string } {
    return { total: this.total.toString(), allocated: this.allocated, free: this.free.toString() };
  }

  outsideIps(): string[] {
    return [...this.outside].sort();
  }

  /** Fragmentation of the free pool (number of free intervals), for metrics and benchmarks. */
  get freeIntervals(): number {
    return this.fresh.intervalCount;
  }

  /**
   * Takes the next address and marks it allocated: the lowest never-leased one, else the
   * least recently released one whose reuse delay has passed. A Released lease may still
   * exist for the latter: take it over with a compare-and-swap update instead of a create.
   * Throws IpamError "Exhausted".
   */
  next(now: Clock = Date.now()): string {
    let fresh = this.fresh.popMin();
    // Only an IPv6 prefix shorter than /64 keeps unusable (RFC 2526) addresses in `fresh`.
    while (fresh !== undefined && this.pool.periodicAnycast && !this.pool.contains(fresh))
      fresh = this.fresh.popMin();
    if (fresh !== undefined) {
      this.held.add(fresh);
      return this.format(fresh);
    }
    const nowMs = toMs(now);
    if (this.peek() && this.qAt[this.qHead] + this.delayMs <= nowMs) {
      const ip = this.qIp[this.qHead++];
      this.releasedAt.delete(ip);
      this.held.add(ip);
      return this.format(ip);
    }
    throw this.exhausted(nowMs);
  }

  /** Allocates one given address (a fixed IP). Throws OutsidePool, Taken, Cooling or Invalid. */
  allocate(ip: string, now: Clock = Date.now()): string {
    const p = this.parse(ip);
    if (!this.pool.containsIp(p)) throw this.outsidePool(ip, p);
    const nowMs = toMs(now);
    const at = this.releasedAt.get(p.value);
    if (this.held.has(p.value)) throw this.taken(ip, p);
    if (at !== undefined && at + this.delayMs > nowMs) throw this.cooling(ip, p, at);
    this.take(p.value);
    return this.format(p.value);
  }

  /**
   * Allocates one address of a pool list (the comma-separated `macvlan.dev/ip` annotation):
   * never-leased entries first, in the order given, then the least recently released entry
   * whose delay has passed. Every entry must be valid and usable: a typo fails loudly.
   */
  allocateFrom(ips: readonly string[], now: Clock = Date.now()): string {
    if (ips.length === 0) {
      throw new IpamError("Invalid", `the IP pool list for subnet "${this.subnet}" is empty`, {
        subnet: this.subnet,
      });
    }
    const nowMs = toMs(now);
    const parsed = ips.map(ip => {
      const p = this.parse(ip);
      if (!this.pool.containsIp(p)) throw this.outsidePool(ip, p);
      return p;
    });
    const free = parsed.find(p => this.fresh.has(p.value));
    let pick = free?.value;
    if (pick === undefined) {
      let bestAt = Infinity;
      for (const { value } of parsed) {
        const at = this.releasedAt.get(value);
        if (at === undefined || at + this.delayMs > nowMs) continue;
        if (at < bestAt || (at === bestAt && pick !== undefined && value < pick)) {
          bestAt = at;
          pick = value;
        }
      }
    }
    if (pick !== undefined) {
      this.take(pick);
      return this.format(pick);
    }
    const states = parsed.map((p, i) => {
      const at = this.releasedAt.get(p.value);
      return at === undefined
        ? `${ips[i]} is leased (${leaseName(this.subnet, ips[i])})`
        : `${ips[i]} is cooling until ${iso(at + this.delayMs)}`;
    });
    const anyCooling = parsed.some(p => this.releasedAt.has(p.value));
    throw new IpamError(
      anyCooling ? "Cooling" : "Taken",
      `no IP of the pool list is free in subnet "${this.subnet}": ${[...new Set(states)].join("; ")}. ` +
        (anyCooling ? "Retry after the cooling time, add" : "Add") +
        " more IPs to the list, or free one by deleting the pod that holds it",
      { subnet: this.subnet, ip: ips.join(",") },
    );
  }

  /** The apiserver says a Reserved/Bound lease holds this address (e.g. AlreadyExists). */
  markAllocated(ip: string): void {
    const p = this.parse(ip);
    if (!this.pool.containsIp(p)) {
      this.outside.add(this.format(p.value, p));
      return;
    }
    if (this.held.has(p.value)) return;
    this.take(p.value);
  }

  /**
   * The lease was released at `releasedAt`: the address cools for reuseDelaySeconds. Pass
   * the lease's status.releasedAt when known; repeated calls keep the latest time.
   */
  release(ip: string, releasedAt: Clock | string = Date.now()): void {
    const p = this.parse(ip);
    if (!this.pool.containsIp(p)) {
      this.outside.delete(this.format(p.value, p));
      return;
    }
    const at = toMs(releasedAt);
    const v = p.value;
    this.held.delete(v);
    this.fresh.delete(v);
    const prev = this.releasedAt.get(v);
    if (prev !== undefined && prev >= at) return;
    this.releasedAt.set(v, at);
    this.enqueue(v, at);
  }

  /** The lease object is gone (deleted, or a create failed): the address is free at once. */
  forget(ip: string): void {
    const p = this.parse(ip);
    if (!this.pool.containsIp(p)) {
      this.outside.delete(this.format(p.value, p));
      return;
    }
    this.held.delete(p.value);
    this.releasedAt.delete(p.value);
    this.fresh.add(p.value);
  }

  stateOf(ip: string, now: Clock = Date.now()): IpState {
    const p = this.parse(ip);
    if (!this.pool.containsIp(p)) return "outside";
    if (this.held.has(p.value)) return "allocated";
    const at = this.releasedAt.get(p.value);
    if (at === undefined) return "free";
    return at + this.delayMs <= toMs(now) ? "reusable" : "cooling";
  }

  /**
   * Replaces the state with the one the leases describe. Released leases without a valid
   * releasedAt cool from `now` (the safe side). Never throws for bad lease data: it reports it.
   */
  rebuild(leases: Iterable<LeaseRecord>, now: Clock = Date.now()): RebuildReport {
    const nowMs = toMs(now);
    const report: RebuildReport = { outside: [], invalid: [], duplicates: [] };
    this.held.clear();
    this.releasedAt.clear();
    this.outside.clear();
    const seen = new Set<bigint>();
    for (const lease of leases) {
      const p = tryParseIp(lease.ip);
      if (!p) {
        report.invalid.push(String(lease.ip));
        continue;
      }
      const released = lease.phase === "Released";
      if (!this.pool.containsIp(p)) {
        if (!released) this.outside.add(this.format(p.value, p));
        continue;
      }
      const v = p.value;
      if (seen.has(v)) report.duplicates.push(this.format(v));
      seen.add(v);
      if (!released) {
        this.held.add(v);
        this.releasedAt.delete(v);
      } else if (!this.held.has(v)) {
        let at: number;
        try {
          at = lease.releasedAt === undefined ? nowMs : toMs(lease.releasedAt);
        } catch {
          at = nowMs;
        }
        const prev = this.releasedAt.get(v);
        if (prev === undefined || at > prev) this.releasedAt.set(v, at);
      }
    }
    report.outside = this.outsideIps();
    report.duplicates = [...new Set(report.duplicates)];

    // Free = usable − leased, in one sweep over the sorted leased addresses.
    const leased = [...seen].sort(compareBigInt);
    this.fresh = new IntervalSet(subtract(this.pool.intervals, pointsToIntervals(leased)));

    const cooling = [...this.releasedAt].sort((a, b) => a[1] - b[1] || compareBigInt(a[0], b[0]));
    this.qIp = cooling.map(c => c[0]);
    this.qAt = cooling.map(c => c[1]);
    this.qHead = 0;
    return report;
  }

  // --- internals

  private format(v: bigint, p?: ParsedIp): string {
    return bigIntToIp(p?.family ?? this.pool.family, v);
  }

  private parse(ip: string): ParsedIp {
    const p = tryParseIp(ip);
    if (!p) {
      const fix = isIpv4Mapped(ip)
        ? "an IPv4-mapped IPv6 address is not accepted, write the IPv4 address itself"
        : "write IPv4 as four decimal octets or IPv6 in RFC 4291 form";
      throw new IpamError(
        "Invalid",
        `"${ip}" is not a valid IP address (subnet "${this.subnet}", ${this.pool.describeRanges()}): ${fix}`,
        { subnet: this.subnet, ip: String(ip) },
      );
    }
    return p;
  }

  /** Moves a usable, not held address to held, whatever its current state. */
  private take(v: bigint): void {
    this.fresh.delete(v);
    this.releasedAt.delete(v);
    this.held.add(v);
  }

  /** True when a live queue entry is at qHead (stale ones are skipped). */
  private peek(): boolean {
    while (
      this.qHead < this.qIp.length &&
      this.releasedAt.get(this.qIp[this.qHead]) !== this.qAt[this.qHead]
    ) {
      this.qHead++;
    }
    if (this.qHead > 1024 && this.qHead * 2 > this.qIp.length) this.compact();
    return this.qHead < this.qIp.length;
  }

  private enqueue(v: bigint, at: number): void {
    const n = this.qIp.length;
    if (this.qHead === n || at >= this.qAt[n - 1]) {
      this.qIp.push(v);
      this.qAt.push(at);
    } else {
      // Out-of-order release time (rare): insert after every entry with time <= at.
      let lo = this.qHead;
      let hi = n;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (this.qAt[mid] <= at) lo = mid + 1;
        else hi = mid;
      }
      this.qIp.splice(lo, 0, v);
      this.qAt.splice(lo, 0, at);
    }
    // Stale entries accumulate when cooling addresses are taken or forgotten: drop them
    // once they outnumber the live ones, so memory follows the leases.
    if (this.qIp.length - this.qHead > 2 * this.releasedAt.size + 1024) this.compact();
  }

  private compact(): void {
    const ips: bigint[] = [];
    const ats: number[] = [];
    for (let i = this.qHead; i < this.qIp.length; i++) {
      if (this.releasedAt.get(this.qIp[i]) === this.qAt[i]) {
        ips.push(this.qIp[i]);
        ats.push(this.qAt[i]);
      }
    }
    this.qIp = ips;
    this.qAt = ats;
    this.qHead = 0;
  }

  private outsidePool(ip: string, p: ParsedIp): IpamError {
    return new IpamError(
      "OutsidePool",
      `IP ${ip} cannot be leased from subnet "${this.subnet}": ${this.pool.explainOutside(p)}. ` +
        `Choose an address in ${this.pool.describeRanges()} (not the network, broadcast or gateway address, an IPv6 anycast address, nor an excluded one), or change the subnet's spec.ranges/spec.exclude`,
      { subnet: this.subnet, ip },
    );
  }

  private taken(ip: string, p: ParsedIp): IpamError {
    return new IpamError(
      "Taken",
      `IP ${ip} in subnet "${this.subnet}" is already leased (MacvlanLease ${leaseName(this.subnet, this.format(p.value))}): ` +
        `choose another IP, or free it by deleting the pod that holds it`,
      { subnet: this.subnet, ip },
    );
  }

  private cooling(ip: string, _p: ParsedIp, at: number): IpamError {
    return new IpamError(
      "Cooling",
      `IP ${ip} in subnet "${this.subnet}" was released at ${iso(at)} and cannot be reused before ${iso(at + this.delayMs)} ` +
        `(reuseDelaySeconds: ${this.reuseDelaySeconds}, so stale ARP caches on the LAN expire): retry after that time or choose another IP`,
      { subnet: this.subnet, ip },
    );
  }

  private exhausted(nowMs: number): IpamError {
    const total = this.pool.total;
    if (total === 0n) {
      return new IpamError(
        "Exhausted",
        `subnet "${this.subnet}" has no usable address (${this.pool.describeRanges()}, minus network/broadcast or IPv6 anycast, gateway and spec.exclude): grow spec.ranges or spec.cidr, or shrink spec.exclude`,
        { subnet: this.subnet },
      );
    }
    let when = "";
    if (this.releasedAt.size > 0 && this.peek()) {
      const next = this.qAt[this.qHead] + this.delayMs;
      when = `, ${this.releasedAt.size} of them released and cooling (the first is reusable at ${iso(Math.max(next, nowMs))})`;
    }
    return new IpamError(
      "Exhausted",
      `subnet "${this.subnet}" is exhausted: all ${total} usable addresses are leased${when}. ` +
        `Grow spec.ranges or spec.cidr, or free addresses by deleting pods that no longer need one ` +
        `(kubectl get mvl -l ${LABEL_SUBNET}=${this.subnet})`,
      { subnet: this.subnet },
    );
  }
}
