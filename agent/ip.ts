// Small, strict IP helpers for the agent (pure).
import { isIP } from "node:net";
import ipaddr from "ipaddr.js";
import type { Family } from "./types";

/** Canonical text of an address (RFC 5952 for IPv6), or undefined when `s` is not one IP. */
export function canonicalIP(s: string): string | undefined {
  const t = s.trim();
  const fam = isIP(t);
  if (fam === 4) return ipaddr.IPv4.parse(t).toString();
  if (fam === 6) {
    const a = ipaddr.IPv6.parse(t);
    // Keep IPv4-mapped addresses out: they are never a macvlan pod address.
    if (a.isIPv4MappedAddress()) return undefined;
    return a.toRFC5952String();
  }
  return undefined;
}

export function familyOf(ip: string): Family | undefined {
  const f = isIP(ip.trim());
  return f === 4 ? 4 : f === 6 ? 6 : undefined;
}

export interface ParsedCIDR {
  family: Family;
  network: string;
  prefixlen: number;
}

/** Parses `198.18.100.0/24` or `2001:db8:1::/64`; undefined when malformed. */
export function parseCIDR(cidr: string): ParsedCIDR | undefined {
  const [addr, len, ...rest] = cidr.trim().split("/");
  if (rest.length || len === undefined || !/^\d{1,3}$/.test(len)) return undefined;
  const ip = canonicalIP(addr);
  const family = ip ? familyOf(ip) : undefined;
  const prefixlen = Number(len);
  if (!ip || !family || prefixlen > (family === 4 ? 32 : 128)) return undefined;
  return { family, network: ip, prefixlen };
}

/** True when `ip` lies inside `cidr` (same family). */
export function cidrContains(cidr: ParsedCIDR, ip: string): boolean {
  const c = canonicalIP(ip);
  if (!c || familyOf(c) !== cidr.family) return false;
  return ipaddr.parse(c).match(ipaddr.parse(cidr.network), cidr.prefixlen);
}

/** Host prefix: `198.18.100.5/32`, `2001:db8::5/128`. */
export const hostPrefix = (ip: string): string => `${ip}/${familyOf(ip) === 6 ? 128 : 32}`;
