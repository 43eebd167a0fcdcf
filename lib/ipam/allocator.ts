// The allocator of one subnet. It is a cache of the MacvlanLease objects, not the truth:
// the operator rebuilds it from leases, asks it for a candidate, creates the lease (the
// deterministic lease name is the lock) and, on AlreadyExists, calls markAllocated and asks
// again. Every address of the usable set is in exactly one state:
//   fresh     - no lease and, as far as this allocator knows, never released: in `fresh`;
//   allocated - a Reserved or Bound lease: in `held`;
//   cooling   - a Released lease: in `releasedAt` + `coolingQueue`, reusable once
//               reuseDelaySeconds have passed since the release (stale ARP caches on the LAN
//               expire meanwhile);
//   recycled  - no lease any more, released at a known time (the Released lease was deleted
//               after its delay, or a reused candidate given back): in `recycledAt` +
//               `recycledQueue`, bounded by `maxRecycled`.
// next() hands out fresh addresses first (lowest first, or from a random start with
// `scan: "random"`), then, least recently released first, recycled and reusable cooling ones
// (design §2: reuse prefers the least recently released address). Recycled addresses are free:
// without a lease they count as free like fresh ones. Leases outside the usable set are tracked
// apart (`outside`) and never handed out.
import { randomBytes } from "node:crypto";
import { ParsedIp, bigIntToIp, compareBigInt, isIpv4Mapped, tryParseIp } from "./address";
import { IpamError } from "./errors";
import { leaseName } from "./identity";
import { IntervalSet, subtract, pointsToIntervals } from "./intervals";
import { PoolSpec, UsablePool } from "./pool";
import { ReleaseQueue } from "./release-queue";
import { LABEL_SUBNET } from "../names";

/** Conflict: the address answers on the LAN from a host that is not ours; held like Bound. */
export type LeasePhase = "Reserved" | "Bound" | "Released" | "Conflict";

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

/**
 * Where next() starts looking for a fresh address: "lowest" (deterministic, the default) or
 * "random" (a uniformly random usable address, then upwards, wrapping around), so that two
 * admission replicas with the same view rarely propose the same address in a burst (Cilium's
 * random start). Reuse of released addresses keeps its order either way.
 */
export type ScanStart = "lowest" | "random";

/** A uniform random integer in [0, bound), bound > 0. */
export type RandomBigInt = (bound: bigint) => bigint;

export interface AllocatorOptions {
  /** Default "lowest". */
  scan?: ScanStart;
  /** The random source of `scan: "random"`; default node:crypto. Inject one in tests. */
  random?: RandomBigInt;
  /**
   * How many recycled addresses (released, lease deleted) keep their place in the reuse
   * order; beyond it the oldest become fresh again. Bounds memory where fresh addresses never
   * run out (an IPv6 /64). Default 65536.
   */
  maxRecycled?: number;
}

/** Random 64-bit words from node:crypto, drawn 4 KiB at a time. */
let entropy = Buffer.alloc(0);
let entropyAt = 0;
function randomWord(): bigint {
  if (entropyAt + 8 > entropy.length) {
    entropy = randomBytes(4096);
    entropyAt = 0;
  }
  const w = entropy.readBigUInt64LE(entropyAt);
  entropyAt += 8;
  return w;
}

/**
 * Cryptographically random integer in [0, bound): one 64-bit word more than the bound needs,
 * so the modulo bias is below 2^-64.
 */
export const cryptoRandomBigInt: RandomBigInt = bound => {
  if (bound <= 0n) throw new RangeError("bound must be positive");
  let x = randomWord();
  for (let bits = 0; bits < bound.toString(2).length; bits += 64) x = (x << 64n) | randomWord();
  return x % bound;
};

// The CRD default (crds/types.ts DEFAULT_REUSE_DELAY_SECONDS); repeated here because that
// module imports the Kubernetes client and this engine must not.
const DEFAULT_REUSE_DELAY_SECONDS = 30;
const DEFAULT_MAX_RECYCLED = 65536;
/** How many reused candidates remember their release time (see takenAt). */
const TAKEN_MEMORY = 1024;

function toMs(t: Clock | string): number {
  const ms = t instanceof Date ? t.getTime() : typeof t === "string" ? Date.parse(t) : t;
  if (typeof ms !== "number" || !Number.isFinite(ms))
    throw new TypeError(`invalid time: ${String(t)}`);
  return ms;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Reuse rank of a free or reusable address: fresh first, then by release time. */
type Rank = { tier: 0 } | { tier: 1; at: number };

export class SubnetAllocator {
  readonly subnet: string;
  readonly pool: UsablePool;
  readonly reuseDelaySeconds: number;
  readonly scan: ScanStart;
  private readonly delayMs: number;
  private readonly random: RandomBigInt;
  private readonly maxRecycled: number;

  private fresh: IntervalSet;
  private readonly held = new Set<bigint>();
  /**
   * Release times of the last TAKEN_MEMORY reused addresses handed out, so that forget() of
   * a candidate that was not leased after all (dry run, failed create) puts it back in its
   * place in the reuse order. Bounded: the churn of a full subnet must not grow a map.
   */
  private readonly takenAt = new Map<bigint, number>();
  private readonly releasedAt = new Map<bigint, number>();
  private readonly recycledAt = new Map<bigint, number>();
  private readonly coolingQueue = new ReleaseQueue(this.releasedAt);
  private readonly recycledQueue = new ReleaseQueue(this.recycledAt);
  private readonly outside = new Set<string>();

  /** Throws IpamError "Invalid" for a malformed spec or options. */
  constructor(subnet: string, spec: AllocatorSpec, options: AllocatorOptions = {}) {
    this.subnet = subnet;
    this.pool = new UsablePool(subnet, spec);
    const invalid = (why: string) =>
      new IpamError("Invalid", `subnet "${subnet}": ${why}`, { subnet });
    const delay = spec.reuseDelaySeconds ?? DEFAULT_REUSE_DELAY_SECONDS;
    if (typeof delay !== "number" || !Number.isFinite(delay) || delay < 0) {
      throw invalid(`spec.reuseDelaySeconds must be a number >= 0, got ${String(delay)}`);
    }
    this.reuseDelaySeconds = delay;
    this.delayMs = delay * 1000;
    this.scan = options.scan ?? "lowest";
    if (this.scan !== "lowest" && this.scan !== "random") {
      throw invalid(`scan must be "lowest" or "random", got ${JSON.stringify(this.scan)}`);
    }
    this.random = options.random ?? cryptoRandomBigInt;
    this.maxRecycled = options.maxRecycled ?? DEFAULT_MAX_RECYCLED;
    if (!Number.isInteger(this.maxRecycled) || this.maxRecycled < 0) {
      throw invalid(`maxRecycled must be a whole number >= 0, got ${String(options.maxRecycled)}`);
    }
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

  /** Addresses with a Released lease (cooling or reusable); part of `free`. */
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

  /** Fragmentation of the fresh pool (number of intervals), for metrics and benchmarks. */
  get freeIntervals(): number {
    return this.fresh.intervalCount;
  }

  /**
   * Takes the next address and marks it allocated: a fresh (never released) one if any, the
   * lowest or from a random start (`scan`); else the least recently released one that is
   * recycled (no lease any more) or whose Released lease has passed its reuse delay. A
   * Released lease may still exist for the latter: take it over with a compare-and-swap
   * update instead of a create. Throws IpamError "Exhausted".
   */
  next(now: Clock = Date.now()): string {
    const nowMs = toMs(now);
    const v = this.takeFresh() ?? this.takeReused(nowMs);
    if (v === undefined) throw this.exhausted(nowMs);
    return this.format(v);
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
   * Allocates one address of a pool list (the comma-separated `macvlan.dev/ip` annotation)
   * in the order next() uses: fresh entries first, in the order given, then the least
   * recently released entry that is recycled or past its delay. Every entry must be valid
   * and usable: a typo fails loudly.
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
    let pick: bigint | undefined;
    let best: Rank | undefined;
    for (const { value } of parsed) {
      const r = this.rank(value, nowMs);
      if (r && (!best || before(r, best))) [pick, best] = [value, r];
    }
    if (pick === undefined) throw this.noneOfList(ips, parsed);
    this.take(pick);
    return this.format(pick);
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
    const prev = this.releasedAt.get(v);
    if (prev !== undefined && prev >= at) return;
    if (prev === undefined && !this.held.delete(v) && !this.recycledAt.delete(v))
      this.fresh.delete(v);
    this.takenAt.delete(v);
    this.releasedAt.set(v, at);
    this.coolingQueue.push(v, at);
  }

  /**
   * The lease object is gone (deleted, or a create failed): the address is free at once. A
   * Released lease deleted after its delay keeps its place in the reuse order (recycled), and
   * so does a reused candidate given back soon after next() or allocate() handed it out (dry
   * run, failed create); any other address is fresh again.
   */
  forget(ip: string): void {
    const p = this.parse(ip);
    if (!this.pool.containsIp(p)) {
      this.outside.delete(this.format(p.value, p));
      return;
    }
    const v = p.value;
    const at = this.releasedAt.get(v) ?? this.takenAt.get(v) ?? this.recycledAt.get(v);
    this.held.delete(v);
    this.takenAt.delete(v);
    this.releasedAt.delete(v);
    if (at === undefined) this.fresh.add(v);
    else this.recycle(v, at);
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
   * What only this allocator knew (recycled addresses, whose leases are gone) is forgotten.
   */
  rebuild(leases: Iterable<LeaseRecord>, now: Clock = Date.now()): RebuildReport {
    const nowMs = toMs(now);
    const report: RebuildReport = { outside: [], invalid: [], duplicates: [] };
    this.held.clear();
    this.takenAt.clear();
    this.releasedAt.clear();
    this.recycledAt.clear();
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
        const at = releaseTime(lease, nowMs);
        const prev = this.releasedAt.get(v);
        if (prev === undefined || at > prev) this.releasedAt.set(v, at);
      }
    }
    report.outside = this.outsideIps();
    report.duplicates = [...new Set(report.duplicates)];

    // Free = usable − leased, in one sweep over the sorted leased addresses.
    const leased = [...seen].sort(compareBigInt);
    this.fresh = new IntervalSet(subtract(this.pool.intervals, pointsToIntervals(leased)));
    this.coolingQueue.reset([...this.releasedAt].sort(byTime));
    this.recycledQueue.reset([]);
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
    const at = this.releasedAt.get(v) ?? this.recycledAt.get(v);
    if (at === undefined) this.fresh.delete(v);
    this.releasedAt.delete(v);
    this.recycledAt.delete(v);
    this.held.add(v);
    if (at !== undefined) this.rememberTaken(v, at);
  }

  private rememberTaken(v: bigint, at: number): void {
    this.takenAt.set(v, at);
    if (this.takenAt.size > TAKEN_MEMORY) this.takenAt.delete(this.takenAt.keys().next().value!);
  }

  /** Puts a free address that was released at `at` into the reuse order. */
  private recycle(v: bigint, at: number): void {
    if (this.recycledAt.get(v) === at) return;
    this.recycledAt.set(v, at);
    this.recycledQueue.push(v, at);
    // Past the limit the oldest recycled addresses become fresh again: they would have come
    // back first anyway, and memory stays bounded where fresh addresses never run out.
    while (this.recycledAt.size > this.maxRecycled && this.recycledQueue.peek()) {
      const old = this.recycledQueue.headIp;
      this.recycledQueue.shift();
      this.recycledAt.delete(old);
      this.fresh.add(old);
    }
  }

  /** Takes a fresh address (see `scan`), or undefined when there is none. */
  private takeFresh(): bigint | undefined {
    for (;;) {
      let v: bigint | undefined;
      if (this.scan === "random" && this.fresh.size > 0n) {
        const start = this.pool.addressAt(this.random(this.pool.span));
        v = this.fresh.ceiling(start) ?? this.fresh.min();
        if (v !== undefined) this.fresh.delete(v);
      } else {
        v = this.fresh.popMin();
      }
      if (v === undefined) return undefined;
      // Only an IPv6 prefix shorter than /64 keeps unusable (RFC 2526) addresses in `fresh`:
      // drop them on the way.
      if (!this.pool.periodicAnycast || this.pool.contains(v)) {
        this.held.add(v);
        return v;
      }
    }
  }

  /** Takes the least recently released address that is recycled or past its reuse delay. */
  private takeReused(nowMs: number): bigint | undefined {
    const r = this.recycledQueue.peek();
    const c = this.coolingQueue.peek() && this.coolingQueue.headAt + this.delayMs <= nowMs;
    if (!r && !c) return undefined;
    // On a tie the recycled one: it has no lease left, so its create will not conflict.
    const recycled = r && (!c || this.recycledQueue.headAt <= this.coolingQueue.headAt);
    const queue = recycled ? this.recycledQueue : this.coolingQueue;
    const v = queue.headIp;
    this.rememberTaken(v, queue.headAt);
    queue.shift();
    (recycled ? this.recycledAt : this.releasedAt).delete(v);
    this.held.add(v);
    return v;
  }

  /** Where a usable address stands in next()'s order; undefined when it cannot be taken now. */
  private rank(v: bigint, nowMs: number): Rank | undefined {
    if (this.held.has(v)) return undefined;
    const released = this.releasedAt.get(v);
    if (released !== undefined) {
      return released + this.delayMs <= nowMs ? { tier: 1, at: released } : undefined;
    }
    const recycled = this.recycledAt.get(v);
    return recycled === undefined ? { tier: 0 } : { tier: 1, at: recycled };
  }

  private noneOfList(ips: readonly string[], parsed: readonly ParsedIp[]): IpamError {
    const states = parsed.map((p, i) => {
      const at = this.releasedAt.get(p.value);
      return at === undefined
        ? `${ips[i]} is leased (${leaseName(this.subnet, ips[i])})`
        : `${ips[i]} is cooling until ${iso(at + this.delayMs)}`;
    });
    const anyCooling = parsed.some(p => this.releasedAt.has(p.value));
    return new IpamError(
      anyCooling ? "Cooling" : "Taken",
      `no IP of the pool list is free in subnet "${this.subnet}": ${[...new Set(states)].join("; ")}. ` +
        (anyCooling ? "Retry after the cooling time, add" : "Add") +
        " more IPs to the list, or free one by deleting the pod that holds it",
      { subnet: this.subnet, ip: ips.join(",") },
    );
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
    if (this.releasedAt.size > 0 && this.coolingQueue.peek()) {
      const next = this.coolingQueue.headAt + this.delayMs;
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

/** True when rank a comes strictly before rank b. */
const before = (a: Rank, b: Rank): boolean =>
  a.tier !== b.tier ? a.tier < b.tier : a.tier === 1 && b.tier === 1 && a.at < b.at;

const byTime = (a: readonly [bigint, number], b: readonly [bigint, number]): number =>
  a[1] - b[1] || compareBigInt(a[0], b[0]);

/** A Released lease's time; a missing or unreadable one cools from now (the safe side). */
function releaseTime(lease: LeaseRecord, nowMs: number): number {
  if (lease.releasedAt === undefined) return nowMs;
  try {
    return toMs(lease.releasedAt);
  } catch {
    return nowMs;
  }
}
