// The usable set of a subnet: CIDR ∩ ranges − reserved addresses − gateway − exclusions,
// kept as normalized intervals. Built once per subnet spec; immutable afterwards.
//
// Reserved addresses (address.ts reservedRuns, design §2 "Counting and edge rules"): the IPv4
// network and broadcast addresses (none on a /31 or /32); the IPv6 subnet-router anycast
// address, the prefix's first address (RFC 4291 2.6.1; none on a /127 or /128); and in an IPv6
// /64 or larger the RFC 2526 reserved subnet anycast addresses, interface identifiers
// fdff:ffff:ffff:ff80 to fdff:ffff:ffff:ffff (the last 128 addresses of the prefix in ::/3).
// None of them is handed out and `total` (status.total) does not count them. A prefix shorter
// than /64 has RFC 2526 addresses in every /64 it spans: too many to cut out of `intervals`,
// so `contains` also tests them (`periodicAnycast`) and `total` subtracts them by arithmetic.
import {
  IpFamily,
  ParsedCidr,
  ParsedIp,
  ReservedKind,
  bigIntToIp,
  cidrContains,
  countReservedAnycastIids,
  formatCidr,
  hasPeriodicAnycast,
  isReservedAnycastIid,
  parseCidr,
  reservedKind,
  reservedRuns,
  tryParseIp,
} from "./address";
import { IpamError } from "./errors";
import { Interval, contains, normalize, subtract, totalSize } from "./intervals";

/** An inclusive range, as in MacvlanSubnet spec.ranges. */
export interface RangeSpec {
  start: string;
  end: string;
}

/** The IPAM-relevant part of a MacvlanSubnet spec (structurally compatible with it). */
export interface PoolSpec {
  cidr: string;
  gateway?: string;
  ranges?: readonly RangeSpec[];
  exclude?: readonly string[];
}

interface Exclusion {
  /** Index in spec.exclude. */
  index: number;
  text: string;
  interval: Interval;
}

/**
 * Why an address is not in the usable set, first reason first: another family, outside the
 * CIDR, reserved by the address architecture (IPv4 network or broadcast, IPv6 subnet-router
 * or RFC 2526 anycast), the gateway, an exclusion (the first entry of spec.exclude that covers
 * it), or outside spec.ranges.
 */
export type UnusableReason =
  | { kind: "family" }
  | { kind: "cidr" }
  | { kind: ReservedKind }
  | { kind: "gateway" }
  | { kind: "exclude"; index: number; entry: string }
  | { kind: "ranges" };

type FieldError = (name: string, why: string) => IpamError;

/** Reads spec.gateway, spec.ranges and spec.exclude against the CIDR; throws naming the field. */
class SpecReader {
  private readonly cidrText: string;

  constructor(
    private readonly cidr: ParsedCidr,
    private readonly field: FieldError,
  ) {
    this.cidrText = formatCidr(cidr);
  }

  /** An address of the subnet's family inside the CIDR. */
  inside(name: string, text: string): bigint {
    const ip = tryParseIp(text);
    if (!ip) throw this.field(name, `"${text}" is not a valid IP address`);
    this.sameFamily(name, text, ip.family);
    if (!cidrContains(this.cidr, ip))
      throw this.field(name, `${text} is outside cidr ${this.cidrText}`);
    return ip.value;
  }

  list<T>(name: string, v: readonly T[] | undefined): readonly T[] {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw this.field(name, "must be a list");
    return v;
  }

  ranges(list: readonly RangeSpec[]): Interval[] {
    return list.map((r, i) => {
      if (!r || typeof r !== "object")
        throw this.field(`spec.ranges[${i}]`, "must be {start, end}");
      const start = this.inside(`spec.ranges[${i}].start`, r.start);
      const end = this.inside(`spec.ranges[${i}].end`, r.end);
      if (start > end) {
        throw this.field(`spec.ranges[${i}]`, `starts after it ends (${r.start} > ${r.end})`);
      }
      return { start, end };
    });
  }

  /** One spec.exclude entry; one outside the CIDR is harmless: it removes nothing. */
  exclusion(text: string, index: number): Exclusion {
    const name = `spec.exclude[${index}]`;
    if (typeof text === "string" && text.includes("/")) {
      let c: ParsedCidr;
      try {
        c = parseCidr(text);
      } catch (e) {
        throw this.field(name, (e as Error).message.replace(/^CIDR /, ""));
      }
      this.sameFamily(name, text, c.family);
      return { index, text, interval: { start: c.first, end: c.last } };
    }
    const ip = tryParseIp(text);
    if (!ip) throw this.field(name, `"${text}" is neither an IP address nor a CIDR`);
    this.sameFamily(name, text, ip.family);
    return { index, text, interval: { start: ip.value, end: ip.value } };
  }

  private sameFamily(name: string, text: string, family: IpFamily): void {
    if (family !== this.cidr.family) {
      throw this.field(
        name,
        `${text} is IPv${family} but cidr ${this.cidrText} is IPv${this.cidr.family}`,
      );
    }
  }
}

export class UsablePool {
  readonly subnet: string;
  readonly family: IpFamily;
  readonly cidr: ParsedCidr;
  /**
   * Usable addresses, sorted, disjoint, non-adjacent; when `periodicAnycast` is set they still
   * hold the RFC 2526 addresses of each /64, which `contains` refuses.
   */
  readonly intervals: readonly Interval[];
  /** Number of usable addresses (status.total). */
  readonly total: bigint;
  readonly gateway?: bigint;
  /** An IPv6 prefix shorter than /64: RFC 2526 anycast addresses in each /64 (see the head). */
  readonly periodicAnycast: boolean;
  private readonly ranges: readonly Interval[];
  private readonly rangesGiven: boolean;
  private readonly exclusions: readonly Exclusion[];
  /** cumulative[i]: addresses in intervals[0..i], for addressAt. */
  private cumulative?: bigint[];

  /** Throws IpamError "Invalid" naming the field when the spec is malformed. */
  constructor(subnet: string, spec: PoolSpec) {
    this.subnet = subnet;
    const field: FieldError = (name, why) =>
      new IpamError("Invalid", `subnet "${subnet}": ${name} ${why}`, { subnet });

    let cidr: ParsedCidr;
    try {
      cidr = parseCidr(spec.cidr);
    } catch (e) {
      throw field("spec.cidr", (e as Error).message.replace(/^CIDR /, ""));
    }
    this.cidr = cidr;
    this.family = cidr.family;
    this.periodicAnycast = hasPeriodicAnycast(cidr);
    const read = new SpecReader(cidr, field);

    // Empty or missing ranges mean the whole CIDR (design §2: default the whole usable CIDR).
    const rangeList = read.list("spec.ranges", spec.ranges);
    this.rangesGiven = rangeList.length > 0;
    this.ranges = this.rangesGiven
      ? normalize(read.ranges(rangeList))
      : [{ start: cidr.first, end: cidr.last }];

    const removed: Interval[] = reservedRuns(cidr);
    if (spec.gateway !== undefined && spec.gateway !== "") {
      this.gateway = read.inside("spec.gateway", spec.gateway);
      removed.push({ start: this.gateway, end: this.gateway });
    }
    this.exclusions = read.list("spec.exclude", spec.exclude).map((t, i) => read.exclusion(t, i));
    removed.push(...this.exclusions.map(x => x.interval));

    this.intervals = subtract(this.ranges, normalize(removed));
    let total = totalSize(this.intervals);
    if (this.periodicAnycast) {
      for (const { start, end } of this.intervals) total -= countReservedAnycastIids(start, end);
    }
    this.total = total;
  }

  contains(value: bigint): boolean {
    return (
      contains(this.intervals, value) && !(this.periodicAnycast && isReservedAnycastIid(value))
    );
  }

  containsIp(ip: ParsedIp): boolean {
    return ip.family === this.family && this.contains(ip.value);
  }

  /**
   * The k-th address (from 0) of `intervals`, for a random scan start; k must be below their
   * size (which is `total` unless `periodicAnycast`). O(log n).
   */
  addressAt(k: bigint): bigint {
    const cum = (this.cumulative ??= this.prefixSums());
    let lo = 0;
    let hi = cum.length - 1;
    if (k < 0n || hi < 0 || k >= cum[hi]) throw new RangeError(`no address ${k} in the pool`);
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cum[mid] > k) hi = mid;
      else lo = mid + 1;
    }
    const before = lo === 0 ? 0n : cum[lo - 1];
    return this.intervals[lo].start + (k - before);
  }

  /** Number of addresses in `intervals` (RFC 2526 addresses of a periodicAnycast pool included). */
  get span(): bigint {
    const cum = (this.cumulative ??= this.prefixSums());
    return cum.length ? cum[cum.length - 1] : 0n;
  }

  /** Why an address is not usable; undefined when it is usable. */
  unusableReason(ip: ParsedIp): UnusableReason | undefined {
    if (ip.family !== this.family) return { kind: "family" };
    if (!cidrContains(this.cidr, ip)) return { kind: "cidr" };
    if (this.containsIp(ip)) return undefined;
    const reserved = reservedKind(this.cidr, ip.value);
    if (reserved) return { kind: reserved };
    if (ip.value === this.gateway) return { kind: "gateway" };
    const ex = this.exclusions.find(
      x => x.interval.start <= ip.value && ip.value <= x.interval.end,
    );
    if (ex) return { kind: "exclude", index: ex.index, entry: ex.text };
    return { kind: "ranges" };
  }

  /** Why an address is not usable, as a clause for an error message. */
  explainOutside(ip: ParsedIp): string {
    const cidrText = formatCidr(this.cidr);
    const why = this.unusableReason(ip);
    switch (why?.kind) {
      case undefined:
        return "it is usable";
      case "family":
        return `it is IPv${ip.family} and the subnet is IPv${this.family} (${cidrText})`;
      case "cidr":
        return `it is outside cidr ${cidrText}`;
      case "network":
        return `it is the network address of ${cidrText}`;
      case "broadcast":
        return `it is the broadcast address of ${cidrText}`;
      case "subnet-router-anycast":
        return `it is the subnet-router anycast address of ${cidrText} (RFC 4291 2.6.1), which belongs to the routers`;
      case "reserved-anycast":
        return `it is a reserved subnet anycast address of ${cidrText} (RFC 2526: interface identifiers fdff:ffff:ffff:ff80 to fdff:ffff:ffff:ffff, or the last 128 addresses of a ::/3 prefix)`;
      case "gateway":
        return "it is the subnet's gateway";
      case "exclude":
        return `it is excluded by spec.exclude entry "${why.entry}"`;
      case "ranges":
        return `it is outside spec.ranges (${this.describeRanges()})`;
    }
  }

  /** "198.18.100.10-198.18.100.200, …" or "the whole cidr …", for messages. */
  describeRanges(max = 4): string {
    if (!this.rangesGiven) return `the whole cidr ${formatCidr(this.cidr)}`;
    const fmt = (v: bigint) => bigIntToIp(this.family, v);
    const shown = this.ranges
      .slice(0, max)
      .map(r => (r.start === r.end ? fmt(r.start) : `${fmt(r.start)}-${fmt(r.end)}`));
    const more = this.ranges.length - shown.length;
    return shown.join(", ") + (more > 0 ? ` and ${more} more` : "");
  }

  private prefixSums(): bigint[] {
    let n = 0n;
    return this.intervals.map(i => (n += i.end - i.start + 1n));
  }
}

/** The usable set of a subnet; throws IpamError "Invalid" for a malformed spec. */
export const usablePool = (subnet: string, spec: PoolSpec): UsablePool =>
  new UsablePool(subnet, spec);
