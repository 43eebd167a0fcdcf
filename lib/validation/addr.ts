// Strict IP and CIDR parsing for validation, as bigints.
//
// Strict like the apiserver's CEL `isIP`/`isCIDR` (Go's net/netip): dotted-quad IPv4 without
// leading zeros, IPv6 without a zone, no IPv4-mapped IPv6. ipaddr.js on its own is lenient
// (`ipaddr.parse("010.0.0.1")` is 8.0.0.1), so IPv4 is checked here and ipaddr.js only parses
// IPv6. The IPAM engine (lib/ipam) has its own parser; this one is private to validation.
import ipaddr from "ipaddr.js";

export type Family = 4 | 6;

export interface Addr {
  family: Family;
  value: bigint;
}

export interface Prefix {
  family: Family;
  /** Prefix length. */
  bits: number;
  /** The address as written (may have host bits set). */
  addr: bigint;
  /** First address (host bits cleared). */
  first: bigint;
  /** Last address (host bits set). */
  last: bigint;
  /** True when the written address has bits set after the prefix. */
  hostBitsSet: boolean;
}

const OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
const IPV4 = new RegExp(`^${OCTET}(\\.${OCTET}){3}$`);
const IPV4_TAIL = new RegExp(`:${OCTET}(\\.${OCTET}){3}$`);

export const familyBits = (f: Family): number => (f === 4 ? 32 : 128);

/** Parses an IPv4 or IPv6 address strictly; undefined when malformed. */
export function parseAddr(s: string): Addr | undefined {
  if (typeof s !== "string") return undefined;
  if (IPV4.test(s)) {
    return { family: 4, value: s.split(".").reduce((acc, o) => (acc << 8n) | BigInt(o), 0n) };
  }
  if (!s.includes(":") || s.includes("%") || !ipaddr.IPv6.isValid(s)) return undefined;
  if (s.includes(".") && !IPV4_TAIL.test(s)) return undefined;
  const v6 = ipaddr.IPv6.parse(s);
  if (v6.isIPv4MappedAddress()) return undefined;
  return { family: 6, value: v6.parts.reduce((acc, p) => (acc << 16n) | BigInt(p), 0n) };
}

/** True for an IPv4-mapped IPv6 address such as ::ffff:198.18.0.1 (rejected by parseAddr). */
export function isIPv4Mapped(s: string): boolean {
  try {
    return (
      typeof s === "string" &&
      s.includes(":") &&
      ipaddr.IPv6.isValid(s) &&
      ipaddr.IPv6.parse(s).isIPv4MappedAddress()
    );
  } catch {
    return false;
  }
}

/** Parses `<address>/<bits>` strictly; undefined when malformed. Host bits are allowed and flagged. */
export function parsePrefix(s: string): Prefix | undefined {
  if (typeof s !== "string") return undefined;
  const slash = s.indexOf("/");
  if (slash < 0 || slash !== s.lastIndexOf("/")) return undefined;
  const a = parseAddr(s.slice(0, slash));
  const lenText = s.slice(slash + 1);
  if (!a || !/^(0|[1-9][0-9]{0,2})$/.test(lenText)) return undefined;
  const bits = Number(lenText);
  const width = familyBits(a.family);
  if (bits > width) return undefined;
  const hostMask = (1n << BigInt(width - bits)) - 1n;
  const first = a.value & ~hostMask;
  return {
    family: a.family,
    bits,
    addr: a.value,
    first,
    last: first | hostMask,
    hostBitsSet: a.value !== first,
  };
}

/** Formats an address in its canonical text form (RFC 5952 for IPv6). */
export function formatAddr(a: Addr): string {
  if (a.family === 4) {
    return [24n, 16n, 8n, 0n].map(shift => ((a.value >> shift) & 0xffn).toString()).join(".");
  }
  const parts: number[] = [];
  for (let i = 7; i >= 0; i--) parts.push(Number((a.value >> BigInt(i * 16)) & 0xffffn));
  return new ipaddr.IPv6(parts).toRFC5952String();
}

/** The network of a prefix in canonical text form, e.g. `198.18.100.0/24`. */
export function formatNetwork(p: Prefix): string {
  return `${formatAddr({ family: p.family, value: p.first })}/${p.bits}`;
}

export const prefixContains = (p: Prefix, a: Addr): boolean =>
  p.family === a.family && a.value >= p.first && a.value <= p.last;

export const prefixesOverlap = (a: Prefix, b: Prefix): boolean =>
  a.family === b.family && a.first <= b.last && b.first <= a.last;

/** Family name for messages. */
export const familyName = (f: Family): string => (f === 4 ? "IPv4" : "IPv6");
