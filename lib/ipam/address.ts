// Address helpers: IPv4 and IPv6 as BigInt, so one code path serves a /24 and a /64.
// The parsers are strict on purpose (no octal, hex or short IPv4 forms, no zone ids): an
// address that two tools read differently must not reach a lease.
//
// Two levels:
// - the text grammar (dotted quad without leading zeros, RFC 4291 text for IPv6), used by
//   the plain conversions ipToBigInt, ipFamily and ipInCidr;
// - the API rule, used for everything a user writes (spec fields, annotations, lease IPs):
//   the grammar minus IPv4-mapped IPv6 addresses (::ffff:0:0/96), the rule of the CRDs'
//   CEL isIP()/isCIDR() (Go netip without zones or Is4In6). tryParseIp, parseIp, isIp,
//   normalizeIp, parseCidr, tryParsePrefix, identity.ts, pool.ts and allocator.ts apply
//   it, as does admission (lib/validation), so no layer accepts an address another refuses.
import { IpamError } from "./errors";

export type IpFamily = 4 | 6;

export interface ParsedIp {
  family: IpFamily;
  value: bigint;
}

export interface ParsedCidr {
  family: IpFamily;
  /** The network address (host bits zero); equal to `first`. */
  network: bigint;
  prefixLength: number;
  /** First and last address of the CIDR, inclusive. */
  first: bigint;
  last: bigint;
}

/** `<address>/<length>` as written: the CIDR it names, plus the address with its host bits. */
export interface ParsedPrefix extends ParsedCidr {
  /** The address as written; differs from `network` when host bits are set. */
  address: bigint;
  hostBitsSet: boolean;
}

export const familyBits = (family: IpFamily): number => (family === 4 ? 32 : 128);

/** The highest address of a family: 2^32-1 or 2^128-1. */
export const maxAddress = (family: IpFamily): bigint => (1n << BigInt(familyBits(family))) - 1n;

const V4_OCTET = /^(?:0|[1-9][0-9]{0,2})$/;
const V6_GROUP = /^[0-9a-fA-F]{1,4}$/;
const PREFIX = /^(?:0|[1-9][0-9]{0,2})$/;

function parseV4(s: string): bigint | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const part of parts) {
    if (!V4_OCTET.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    n = n * 256 + octet;
  }
  return BigInt(n);
}

function parseV6(s: string): bigint | undefined {
  // 45 = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
  if (s.length < 2 || s.length > 45) return undefined;
  let text = s;
  const lastColon = s.lastIndexOf(":");
  if (s.includes(".", lastColon)) {
    // Embedded IPv4 (e.g. ::ffff:198.18.0.1) fills the last two groups.
    const v4 = parseV4(s.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    text = `${s.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const split = (t: string) => (t === "" ? [] : t.split(":"));
  const gap = text.indexOf("::");
  let head: string[];
  let tail: string[] = [];
  if (gap >= 0) {
    if (text.includes("::", gap + 1)) return undefined;
    head = split(text.slice(0, gap));
    tail = split(text.slice(gap + 2));
    // "::" stands for at least one zero group (RFC 4291 2.2).
    if (head.length + tail.length > 7) return undefined;
  } else {
    head = text.split(":");
    if (head.length !== 8) return undefined;
  }
  // One BigInt from 32 hex digits is several times faster than eight shift-and-or steps.
  let hex = "";
  for (const g of head) {
    if (!V6_GROUP.test(g)) return undefined;
    hex += g.padStart(4, "0");
  }
  hex += "0000".repeat(8 - head.length - tail.length);
  for (const g of tail) {
    if (!V6_GROUP.test(g)) return undefined;
    hex += g.padStart(4, "0");
  }
  return BigInt(`0x${hex}`);
}

/** The text grammar alone: IPv4-mapped IPv6 addresses pass (see the head of this file). */
function parseText(s: string): ParsedIp | undefined {
  if (typeof s !== "string") return undefined;
  if (s.includes(":")) {
    const value = parseV6(s);
    return value === undefined ? undefined : { family: 6, value };
  }
  const value = parseV4(s);
  return value === undefined ? undefined : { family: 4, value };
}

/** An IPv4-mapped IPv6 address (::ffff:0:0/96, RFC 4291 2.5.5.2), by value. */
const isMappedValue = (ip: ParsedIp): boolean => ip.family === 6 && ip.value >> 32n === 0xffffn;

/**
 * True for IPv4-mapped IPv6 text such as "::ffff:198.18.0.1" or "::ffff:c612:1": valid RFC
 * 4291 text that the API refuses (tryParseIp returns undefined), so messages can say why.
 */
export function isIpv4Mapped(s: string): boolean {
  const p = parseText(s);
  return p !== undefined && isMappedValue(p);
}

/**
 * Parses an address as the API accepts it (Kubernetes CEL isIP): undefined when it is not
 * valid IPv4 or IPv6 text, or is an IPv4-mapped IPv6 address. The deprecated IPv4-compatible
 * form (::198.18.0.1 = ::c612:1) is an ordinary IPv6 address and is accepted, as by Go netip.
 */
export function tryParseIp(s: string): ParsedIp | undefined {
  const p = parseText(s);
  return p === undefined || isMappedValue(p) ? undefined : p;
}

function invalidIp(s: string): IpamError {
  const why = isIpv4Mapped(s)
    ? "is an IPv4-mapped IPv6 address, which the API does not accept: write the IPv4 address itself (198.18.0.1)"
    : "is not a valid IP address: write IPv4 as four decimal octets (198.18.100.7) or IPv6 in RFC 4291 text form (2001:db8::7), without zone or prefix";
  return new IpamError("Invalid", `"${s}" ${why}`, { ip: String(s) });
}

export function parseIp(s: string): ParsedIp {
  const parsed = tryParseIp(s);
  if (!parsed) throw invalidIp(s);
  return parsed;
}

export const isIp = (s: string): boolean => tryParseIp(s) !== undefined;

/** The text grammar only (IPv4-mapped IPv6 too): throws IpamError "Invalid" on malformed text. */
function parseTextOrThrow(s: string): ParsedIp {
  const parsed = parseText(s);
  if (!parsed) throw invalidIp(s);
  return parsed;
}

/** The value of any valid address text (IPv4-mapped IPv6 included); for user input use parseIp. */
export const ipToBigInt = (ip: string): bigint => parseTextOrThrow(ip).value;
/** The family of any valid address text (IPv4-mapped IPv6 is 6); for user input use parseIp. */
export const ipFamily = (ip: string): IpFamily => parseTextOrThrow(ip).family;

function checkRange(family: IpFamily, n: bigint): void {
  if (n < 0n || n > maxAddress(family)) {
    throw new RangeError(`${n} is not an IPv${family} address value`);
  }
}

/** The eight groups of an IPv6 value as hex without leading zeros, most significant first. */
function v6Groups(n: bigint): string[] {
  const hex = n.toString(16).padStart(32, "0");
  const groups: string[] = [];
  for (let i = 0; i < 32; i += 4) {
    let j = i;
    while (j < i + 3 && hex.charCodeAt(j) === 48 /* "0" */) j++;
    groups.push(hex.slice(j, i + 4));
  }
  return groups;
}

/** Canonical text: dotted quad, or RFC 5952 (lower case, longest zero run as "::"). */
export function bigIntToIp(family: IpFamily, n: bigint): string {
  checkRange(family, n);
  if (family === 4) {
    const v = Number(n);
    return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
  }
  const groups = v6Groups(n);
  // Longest run of zero groups, leftmost on a tie; a single zero group is not shortened.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return groups.join(":");
  return `${groups.slice(0, bestStart).join(":")}::${groups.slice(bestStart + bestLen).join(":")}`;
}

/** All eight groups, four hex digits each, lower case: fixed width, hence injective. */
export function expandIpv6(n: bigint, separator = ":"): string {
  checkRange(6, n);
  return n.toString(16).padStart(32, "0").match(/.{4}/g)!.join(separator);
}

/** The canonical text of an address ("2001:DB8:0::7" → "2001:db8::7"). */
export function normalizeIp(ip: string): string {
  const { family, value } = parseIp(ip);
  return bigIntToIp(family, value);
}

/** Reads `<address>/<length>`; host bits are kept and flagged. A string says what is wrong. */
function readPrefix(s: string): ParsedPrefix | string {
  if (typeof s !== "string") return "is not a string";
  const slash = s.indexOf("/");
  if (slash < 0) return "has no prefix length";
  const text = s.slice(0, slash);
  const addr = tryParseIp(text);
  if (!addr) {
    return isIpv4Mapped(text)
      ? `has an IPv4-mapped IPv6 address "${text}", which the API does not accept: write the IPv4 network`
      : `has an invalid address "${text}"`;
  }
  const bits = familyBits(addr.family);
  const prefixText = s.slice(slash + 1);
  const prefixLength = PREFIX.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefixLength <= bits)) return `has an invalid prefix length "${prefixText}" (0-${bits})`;
  const hostMask = (1n << BigInt(bits - prefixLength)) - 1n;
  const network = addr.value & ~hostMask;
  return {
    family: addr.family,
    network,
    prefixLength,
    first: network,
    last: network | hostMask,
    address: addr.value,
    hostBitsSet: network !== addr.value,
  };
}

/**
 * Parses `<address>/<length>` by the API rule like parseCidr, but accepts host bits (flagged
 * in `hostBitsSet`, masked off in `network`), so a message can name the network to use.
 * Undefined when malformed.
 */
export function tryParsePrefix(s: string): ParsedPrefix | undefined {
  const p = readPrefix(s);
  return typeof p === "string" ? undefined : p;
}

/** An IP address or a CIDR (an exclusion): one address is its /32 or /128. */
export function tryParseIpOrPrefix(s: string): ParsedPrefix | undefined {
  if (typeof s !== "string") return undefined;
  if (s.includes("/")) return tryParsePrefix(s);
  const ip = tryParseIp(s);
  if (!ip) return undefined;
  const { family, value } = ip;
  const prefixLength = familyBits(family);
  return {
    family,
    network: value,
    prefixLength,
    first: value,
    last: value,
    address: value,
    hostBitsSet: false,
  };
}

/** Parses a network in CIDR notation; throws IpamError "Invalid" when malformed or with host bits. */
export function parseCidr(s: string): ParsedCidr {
  const invalid = (why: string) =>
    new IpamError(
      "Invalid",
      `CIDR "${s}" ${why}: expected e.g. 198.18.100.0/24 or 2001:db8:0:64::/64`,
    );
  const p = readPrefix(s);
  if (typeof p === "string") throw invalid(p);
  const { family, network, prefixLength, first, last } = p;
  if (p.hostBitsSet) {
    throw invalid(
      `has host bits set (the network is ${bigIntToIp(family, network)}/${prefixLength})`,
    );
  }
  return { family, network, prefixLength, first, last };
}

export const formatCidr = (c: ParsedCidr): string =>
  `${bigIntToIp(c.family, c.network)}/${c.prefixLength}`;

export const prefixLength = (cidr: string): number => parseCidr(cidr).prefixLength;

/** Number of addresses in a CIDR (2^(bits-prefix)), network and broadcast included. */
export const cidrSize = (c: ParsedCidr): bigint => c.last - c.first + 1n;

export const cidrContains = (c: ParsedCidr, ip: ParsedIp): boolean =>
  ip.family === c.family && ip.value >= c.first && ip.value <= c.last;

/** True when the two CIDRs share an address (false across families). */
export const cidrsOverlap = (a: ParsedCidr, b: ParsedCidr): boolean =>
  a.family === b.family && a.first <= b.last && b.first <= a.last;

/** True when every address of `inner` lies inside `outer` (false across families). */
export const cidrWithin = (inner: ParsedCidr, outer: ParsedCidr): boolean =>
  inner.family === outer.family && inner.first >= outer.first && inner.last <= outer.last;

/**
 * The IPv4 network and broadcast addresses of a CIDR, which are never handed out. None on a
 * /31 or /32 (RFC 3021: point-to-point, every address is a host) and none in IPv6.
 */
export function networkAndBroadcast(c: ParsedCidr): bigint[] {
  return c.family === 4 && c.prefixLength <= 30 ? [c.first, c.last] : [];
}

/** An inclusive run of reserved addresses (same shape as intervals.ts Interval). */
export interface ReservedRun {
  start: bigint;
  end: bigint;
  kind: ReservedKind;
}

/** Why the address architecture keeps an address of a CIDR from hosts. */
export type ReservedKind = "network" | "broadcast" | "subnet-router-anycast" | "reserved-anycast";

/**
 * RFC 2526 section 2: in a subnet whose addresses have 64-bit interface identifiers in
 * EUI-64 format (format prefixes 001 to 111, multicast aside), the highest 128 identifier
 * values with the universal/local bit cleared are reserved subnet anycast addresses: the
 * 57 bits 1111110111...111 followed by a 7-bit anycast ID, that is interface identifiers
 * fdff:ffff:ffff:ff80 to fdff:ffff:ffff:ffff (0x7e is the Mobile IPv6 home agents anycast).
 * Note they are not the last 128 addresses of a /64 (those, ffff:ffff:ffff:ff80 to
 * ffff:ffff:ffff:ffff, are ordinary addresses).
 */
export const RFC2526_IID_FIRST = 0xfdff_ffff_ffff_ff80n;
export const RFC2526_IID_LAST = 0xfdff_ffff_ffff_ffffn;
const IID_MASK = (1n << 64n) - 1n;

/**
 * RFC 2526 for the format prefix 000 (::/3), whose interface identifiers need not be 64 bits:
 * the reserved anycast addresses are the prefix followed by all ones and the 7-bit ID, i.e.
 * the last 128 addresses of the prefix.
 */
const isFormat000 = (c: ParsedCidr): boolean => c.family === 6 && c.first >> 125n === 0n;

/**
 * True when the IPv6 prefix carries RFC 2526 reserved anycast addresses in every /64 it
 * spans: a prefix shorter than /64 outside ::/3. These are described by
 * isReservedAnycastIid, not by reservedRuns (a /32 spans 2^32 of them).
 */
export const hasPeriodicAnycast = (c: ParsedCidr): boolean =>
  c.family === 6 && c.prefixLength < 64 && !isFormat000(c);

/** True when the low 64 bits of `v` are an RFC 2526 reserved subnet anycast identifier. */
export function isReservedAnycastIid(v: bigint): boolean {
  const iid = v & IID_MASK;
  return iid >= RFC2526_IID_FIRST && iid <= RFC2526_IID_LAST;
}

/**
 * How many addresses of [start, end] have an RFC 2526 reserved anycast interface identifier
 * (see isReservedAnycastIid): 128 per /64, counted without enumerating.
 */
export function countReservedAnycastIids(start: bigint, end: bigint): bigint {
  // Number of matches in [0, x): 128 per whole /64 below x, plus the part of x's own /64.
  const below = (x: bigint): bigint => {
    const iid = x & IID_MASK;
    const part =
      iid <= RFC2526_IID_FIRST ? 0n : iid > RFC2526_IID_LAST ? 128n : iid - RFC2526_IID_FIRST;
    return (x >> 64n) * 128n + part;
  };
  return end < start ? 0n : below(end + 1n) - below(start);
}

/**
 * The addresses of a CIDR that are never handed out, whatever the spec says, as inclusive
 * runs (at most three):
 * - IPv4: the network and broadcast addresses, except on a /31 or /32 (RFC 3021);
 * - IPv6: the subnet-router anycast address, the prefix's first address (RFC 4291 2.6.1),
 *   except on a /127 (RFC 6164 point-to-point: both addresses are hosts) and a /128;
 * - IPv6 /64 or larger: the RFC 2526 reserved subnet anycast addresses. On a /64 that is
 *   interface identifiers fdff:ffff:ffff:ff80 to fdff:ffff:ffff:ffff (see RFC2526_IID_FIRST);
 *   in ::/3 (format prefix 000) the last 128 addresses of the prefix. A prefix shorter than
 *   /64 (outside ::/3) has them in each of its /64s: hasPeriodicAnycast says so and
 *   isReservedAnycastIid tests an address, as they cannot be listed.
 * Longer prefixes (/65 to /126) have only the subnet-router anycast address: RFC 2526 defines
 * no anycast identifiers for them (their interface identifiers are not EUI-64 format).
 */
export function reservedRuns(c: ParsedCidr): ReservedRun[] {
  const one = (v: bigint, kind: ReservedKind): ReservedRun => ({ start: v, end: v, kind });
  if (c.family === 4) {
    return networkAndBroadcast(c).map((v, i) => one(v, i === 0 ? "network" : "broadcast"));
  }
  const runs: ReservedRun[] = [];
  if (c.prefixLength <= 126) runs.push(one(c.first, "subnet-router-anycast"));
  if (c.prefixLength <= 64 && isFormat000(c)) {
    runs.push({ start: c.last - 127n, end: c.last, kind: "reserved-anycast" });
  } else if (c.prefixLength === 64) {
    const base = c.first & ~IID_MASK;
    runs.push({
      start: base | RFC2526_IID_FIRST,
      end: base | RFC2526_IID_LAST,
      kind: "reserved-anycast",
    });
  }
  return runs;
}

/** Why the address architecture reserves `v` in `c` (see reservedRuns), or undefined. */
export function reservedKind(c: ParsedCidr, v: bigint): ReservedKind | undefined {
  if (v < c.first || v > c.last) return undefined;
  const run = reservedRuns(c).find(r => r.start <= v && v <= r.end);
  if (run) return run.kind;
  return hasPeriodicAnycast(c) && isReservedAnycastIid(v) ? "reserved-anycast" : undefined;
}

/**
 * True when `ip` lies inside `cidr` (false for the other family); throws on malformed input.
 * A plain conversion like ipToBigInt: IPv4-mapped IPv6 text is read as the IPv6 address it is.
 */
export function ipInCidr(ip: string, cidr: string | ParsedCidr): boolean {
  const c = typeof cidr === "string" ? parseCidr(cidr) : cidr;
  return cidrContains(c, parseTextOrThrow(ip));
}

/** "198.18.100.7/24": the form Multus `ips` entries and CNI static IPAM expect. */
export function ipWithPrefix(ip: string, cidr: string | ParsedCidr): string {
  const c = typeof cidr === "string" ? parseCidr(cidr) : cidr;
  const parsed = parseIp(ip);
  if (!cidrContains(c, parsed)) {
    throw new IpamError("Invalid", `IP ${ip} is not inside ${formatCidr(c)}`, { ip });
  }
  return `${bigIntToIp(parsed.family, parsed.value)}/${c.prefixLength}`;
}

/** Splits the `macvlan.dev/ip` annotation ("a, b,c") into its entries, blanks dropped. */
export const splitIpList = (annotation: string): string[] =>
  annotation
    .split(",")
    .map(s => s.trim())
    .filter(s => s !== "");

export const compareBigInt = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);
