// IP helpers for the agent: thin wrappers over lib/ipam/address, the one IP library of the
// project, so the agent reads an address or a CIDR exactly as admission and the allocator do
// (strict dotted quads, RFC 4291 text, no IPv4-mapped IPv6). The wrappers only trim input and
// turn "not an address" into undefined for the kernel's and the pods' free-form text.
import {
  type ParsedPrefix,
  bigIntToIp,
  cidrContains as prefixContains,
  ipFamily,
  tryParseIp,
  tryParsePrefix,
} from "../lib/ipam/address";
import type { Family } from "./types";

/** Canonical text of an address (RFC 5952 for IPv6), or undefined when `s` is not one IP. */
export function canonicalIP(s: string): string | undefined {
  const p = tryParseIp(s.trim());
  // IPv4-mapped addresses are refused by tryParseIp: they are never a macvlan pod address.
  return p ? bigIntToIp(p.family, p.value) : undefined;
}

export function familyOf(ip: string): Family | undefined {
  return tryParseIp(ip.trim())?.family;
}

/** A parsed CIDR (lib/ipam ParsedPrefix: host bits are masked off in `network`). */
export type ParsedCIDR = ParsedPrefix;

/** Parses `198.18.100.0/24` or `2001:db8:1::/64`; undefined when malformed. */
export function parseCIDR(cidr: string): ParsedCIDR | undefined {
  return tryParsePrefix(cidr.trim());
}

/** True when `ip` lies inside `cidr` (same family). */
export function cidrContains(cidr: ParsedCIDR, ip: string): boolean {
  const p = tryParseIp(ip.trim());
  return p !== undefined && prefixContains(cidr, p);
}

/** Host prefix: `198.18.100.5/32`, `2001:db8::5/128`. */
export function hostPrefix(ip: string): string {
  let family: Family = 4;
  try {
    family = ipFamily(ip.trim());
  } catch {
    family = ip.includes(":") ? 6 : 4;
  }
  return `${ip}/${family === 6 ? 128 : 32}`;
}
