// Names and MACs derived from (subnet, IP) alone, so every replica and every restart agrees
// on them without shared state. Changing either derivation changes running pods' identities:
// treat both as part of the API.
import { createHash } from "node:crypto";
import { bigIntToIp, expandIpv6, parseIp } from "./address";
import { IpamError } from "./errors";

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const MAX_NAME = 253;

export const isDns1123Subdomain = (s: string): boolean =>
  s.length <= MAX_NAME && DNS1123_SUBDOMAIN.test(s);

/**
 * The MacvlanLease name for an address: "<subnet>-198-18-100-7", or for IPv6 the eight
 * fully expanded groups ("<subnet>-2001-0db8-0000-…-0007"). The suffix has a fixed shape
 * per family (4 decimal octets, or 8 groups of exactly 4 hex digits), so the name is
 * injective over (subnet, IP); it is the cluster-wide lock on the address.
 */
export function leaseName(subnet: string, ip: string): string {
  const { family, value } = parseIp(ip);
  const suffix = family === 4 ? bigIntToIp(4, value).replace(/\./g, "-") : expandIpv6(value, "-");
  const name = `${subnet}-${suffix}`;
  if (!isDns1123Subdomain(name)) {
    throw new IpamError(
      "Invalid",
      `lease name "${name.slice(0, 80)}${name.length > 80 ? "…" : ""}" for ${ip} is not a valid DNS-1123 subdomain (lower case alphanumerics, "-" and ".", at most ${MAX_NAME} characters): subnet "${subnet}" needs a shorter DNS-1123 name`,
      { subnet, ip },
    );
  }
  return name;
}

const hex2 = (b: number) => b.toString(16).padStart(2, "0");

/**
 * The default MAC of an address in a subnet: locally administered (bit 1 of the first octet
 * set) and unicast (bit 0 clear), stable across restarts and replicas.
 *
 * IPv4: two octets from sha256(subnet) followed by the four address octets, so two addresses
 * of one subnet (or of non-overlapping subnets on one LAN) can never share a MAC.
 * IPv6: six octets of sha256(subnet + address): 46 random bits, collisions are negligible
 * but, unlike IPv4, not impossible.
 */
export function macFor(subnet: string, ip: string): string {
  const { family, value } = parseIp(ip);
  let bytes: number[];
  if (family === 4) {
    const digest = createHash("sha256").update(`macvlan.dev/v1 ${subnet}`).digest();
    const v = Number(value);
    bytes = [digest[0], digest[1], v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
  } else {
    const digest = createHash("sha256")
      .update(`macvlan.dev/v1 ${subnet} ${bigIntToIp(6, value)}`)
      .digest();
    bytes = [...digest.subarray(0, 6)];
  }
  bytes[0] = (bytes[0] | 0x02) & 0xfe;
  return bytes.map(hex2).join(":");
}
