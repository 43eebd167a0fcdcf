// The usable set of a subnet: CIDR ∩ ranges − IPv4 network/broadcast − gateway − exclusions,
// kept as normalized intervals. Built once per subnet spec; immutable afterwards.
import {
  IpFamily,
  ParsedCidr,
  ParsedIp,
  bigIntToIp,
  cidrContains,
  formatCidr,
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
  text: string;
  interval: Interval;
}

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

    // Empty or missing ranges mean the whole CIDR.
    this.rangesGiven = (spec.ranges?.length ?? 0) > 0;
    const ranges: Interval[] = [];
    (spec.ranges ?? []).forEach((r, i) => {
      const start = inside(`spec.ranges[${i}].start`, r.start);
      const end = inside(`spec.ranges[${i}].end`, r.end);
      if (start > end)
        throw field(`spec.ranges[${i}]`, `starts after it ends (${r.start} > ${r.end})`);
      ranges.push({ start, end });
    });
    this.ranges = this.rangesGiven ? normalize(ranges) : [{ start: cidr.first, end: cidr.last }];

    const removed: Interval[] = [];
    // RFC 3021: a /31 (and a /32) has no network or broadcast address.
    if (cidr.family === 4 && cidr.prefixLength <= 30) {
      removed.push({ start: cidr.first, end: cidr.first }, { start: cidr.last, end: cidr.last });
    }
    if (spec.gateway !== undefined && spec.gateway !== "") {
      this.gateway = inside("spec.gateway", spec.gateway);
      removed.push({ start: this.gateway, end: this.gateway });
    }
    const exclusions: Exclusion[] = [];
    (spec.exclude ?? []).forEach((text, i) => {
      const name = `spec.exclude[${i}]`;
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
      exclusions.push({ text, interval });
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

  /** Why an address is not usable, as a clause for an error message. */
  explainOutside(ip: ParsedIp): string {
    const c = this.cidr;
    const cidrText = formatCidr(c);
    if (ip.family !== this.family)
      return `it is IPv${ip.family} and the subnet is IPv${this.family} (${cidrText})`;
    if (!cidrContains(c, ip)) return `it is outside cidr ${cidrText}`;
    if (this.containsIp(ip)) return "it is usable";
    if (c.family === 4 && c.prefixLength <= 30) {
      if (ip.value === c.first) return `it is the network address of ${cidrText}`;
      if (ip.value === c.last) return `it is the broadcast address of ${cidrText}`;
    }
    if (ip.value === this.gateway) return "it is the subnet's gateway";
    const ex = this.exclusions.find(
      x => x.interval.start <= ip.value && ip.value <= x.interval.end,
    );
    if (ex) return `it is excluded by spec.exclude entry "${ex.text}"`;
    return `it is outside spec.ranges (${this.describeRanges()})`;
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
