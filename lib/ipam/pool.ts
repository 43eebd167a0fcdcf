// The usable set of a subnet: CIDR ∩ ranges − IPv4 network/broadcast − gateway − exclusions,
// kept as normalized intervals. Built once per subnet spec; immutable afterwards.
import {
  IpFamily,
  ParsedCidr,
  ParsedIp,
  bigIntToIp,
  cidrContains,
  formatCidr,
  networkAndBroadcast,
  parseCidr,
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
 * CIDR, the IPv4 network or broadcast address, the gateway, an exclusion (the first entry of
 * spec.exclude that covers it), or outside spec.ranges.
 */
export type UnusableReason =
  | { kind: "family" }
  | { kind: "cidr" }
  | { kind: "network" }
  | { kind: "broadcast" }
  | { kind: "gateway" }
  | { kind: "exclude"; index: number; entry: string }
  | { kind: "ranges" };

export class UsablePool {
  readonly subnet: string;
  readonly family: IpFamily;
  readonly cidr: ParsedCidr;
  /** Usable addresses, sorted, disjoint, non-adjacent. */
  readonly intervals: readonly Interval[];
  /** Number of usable addresses (status.total). */
  readonly total: bigint;
  readonly gateway?: bigint;
  private readonly ranges: readonly Interval[];
  private readonly rangesGiven: boolean;
  private readonly exclusions: readonly Exclusion[];

  /** Throws IpamError "Invalid" naming the field when the spec is malformed. */
  constructor(subnet: string, spec: PoolSpec) {
    this.subnet = subnet;
    const field = (name: string, why: string) =>
      new IpamError("Invalid", `subnet "${subnet}": ${name} ${why}`, { subnet });

    let cidr: ParsedCidr;
    try {
      cidr = parseCidr(spec.cidr);
    } catch (e) {
      throw field("spec.cidr", (e as Error).message.replace(/^CIDR /, ""));
    }
    this.cidr = cidr;
    this.family = cidr.family;
    const cidrText = formatCidr(cidr);

    // An address of the subnet's family inside the CIDR, or a clear error naming the field.
    const inside = (name: string, text: string): bigint => {
      const ip = tryParseIp(text);
      if (!ip) throw field(name, `"${text}" is not a valid IP address`);
      if (ip.family !== cidr.family) {
        throw field(name, `${text} is IPv${ip.family} but cidr ${cidrText} is IPv${cidr.family}`);
      }
      if (!cidrContains(cidr, ip)) throw field(name, `${text} is outside cidr ${cidrText}`);
      return ip.value;
    };

    const list = <T>(name: string, v: readonly T[] | undefined): readonly T[] => {
      if (v === undefined || v === null) return [];
      if (!Array.isArray(v)) throw field(name, "must be a list");
      return v;
    };

    // Empty or missing ranges mean the whole CIDR (design §2: default the whole usable CIDR).
    const rangeList = list("spec.ranges", spec.ranges);
    this.rangesGiven = rangeList.length > 0;
    const ranges: Interval[] = [];
    rangeList.forEach((r, i) => {
      if (!r || typeof r !== "object") throw field(`spec.ranges[${i}]`, "must be {start, end}");
      const start = inside(`spec.ranges[${i}].start`, r.start);
      const end = inside(`spec.ranges[${i}].end`, r.end);
      if (start > end)
        throw field(`spec.ranges[${i}]`, `starts after it ends (${r.start} > ${r.end})`);
      ranges.push({ start, end });
    });
    this.ranges = this.rangesGiven ? normalize(ranges) : [{ start: cidr.first, end: cidr.last }];

    // RFC 3021: a /31 (and a /32) has no network or broadcast address.
    const removed: Interval[] = networkAndBroadcast(cidr).map(v => ({ start: v, end: v }));
    if (spec.gateway !== undefined && spec.gateway !== "") {
      this.gateway = inside("spec.gateway", spec.gateway);
      removed.push({ start: this.gateway, end: this.gateway });
    }
    const exclusions: Exclusion[] = [];
    list("spec.exclude", spec.exclude).forEach((text, index) => {
      const name = `spec.exclude[${index}]`;
      let interval: Interval;
      if (typeof text === "string" && text.includes("/")) {
        let c: ParsedCidr;
        try {
          c = parseCidr(text);
        } catch (e) {
          throw field(name, (e as Error).message.replace(/^CIDR /, ""));
        }
        if (c.family !== cidr.family) {
          throw field(name, `${text} is IPv${c.family} but cidr ${cidrText} is IPv${cidr.family}`);
        }
        interval = { start: c.first, end: c.last };
      } else {
        const ip = tryParseIp(text);
        if (!ip) throw field(name, `"${text}" is neither an IP address nor a CIDR`);
        if (ip.family !== cidr.family) {
          throw field(name, `${text} is IPv${ip.family} but cidr ${cidrText} is IPv${cidr.family}`);
        }
        interval = { start: ip.value, end: ip.value };
      }
      // An exclusion outside the CIDR is harmless: it removes nothing.
      exclusions.push({ index, text, interval });
      removed.push(interval);
    });
    this.exclusions = exclusions;

    this.intervals = subtract(this.ranges, normalize(removed));
    this.total = totalSize(this.intervals);
  }

  contains(value: bigint): boolean {
    return contains(this.intervals, value);
  }

  containsIp(ip: ParsedIp): boolean {
    return ip.family === this.family && contains(this.intervals, ip.value);
  }

  /** Why an address is not usable; undefined when it is usable. */
  unusableReason(ip: ParsedIp): UnusableReason | undefined {
    const c = this.cidr;
    if (ip.family !== this.family) return { kind: "family" };
    if (!cidrContains(c, ip)) return { kind: "cidr" };
    if (this.containsIp(ip)) return undefined;
    const [network, broadcast] = networkAndBroadcast(c);
    if (ip.value === network) return { kind: "network" };
    if (ip.value === broadcast) return { kind: "broadcast" };
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
}

/** The usable set of a subnet; throws IpamError "Invalid" for a malformed spec. */
export const usablePool = (subnet: string, spec: PoolSpec): UsablePool =>
  new UsablePool(subnet, spec);
