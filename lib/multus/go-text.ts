// The Go standard library rules Multus' parsing leans on, reimplemented exactly where JavaScript's
// look-alikes differ (String.prototype.trim trims U+FEFF but not U+0085; Go is the opposite).
import { isIPv4, isIPv6 } from "node:net";

/** unicode.IsSpace: the White_Space property. All of it lies in the BMP. */
const GO_SPACE = new Set([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004,
  0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);

/** strings.TrimSpace: strips leading and trailing unicode.IsSpace characters. */
export function goTrimSpace(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && GO_SPACE.has(text.charCodeAt(start))) start++;
  while (end > start && GO_SPACE.has(text.charCodeAt(end - 1))) end--;
  return text.slice(start, end);
}

/**
 * encoding/json's key folding (fold.go foldName: ASCII upper-cased, every other rune replaced by
 * the smallest rune of its unicode.SimpleFold orbit), as far as it can matter for ASCII field
 * tags: the only non-ASCII runes whose orbit holds an ASCII letter are U+017F LATIN SMALL LETTER
 * LONG S (orbit s S ſ) and U+212A KELVIN SIGN (orbit k K K). Other non-ASCII runes stay as they
 * are and so never match an ASCII tag, as in Go (U+0131 dotless ı does NOT fold to i).
 */
export function foldForAsciiTag(key: string): string {
  let folded = "";
  for (const character of key) {
    if (character === "\u017f") folded += "S";
    else if (character === "\u212a") folded += "K";
    else if (character >= "a" && character <= "z") folded += character.toUpperCase();
    else folded += character;
  }
  return folded;
}

/** The DNS-1123 label pattern parsePodNetworkObjectName checks namespace and name against. */
const DNS_1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** parsePodNetworkObjectName: an empty part passes (it is checked only when non-empty). */
export const isEmptyOrDns1123Label = (part: string) => part === "" || DNS_1123_LABEL.test(part);

/** syscall.IFNAMSIZ - 1: the longest interface name, in bytes. */
const MAX_INTERFACE_NAME_BYTES = 15;

/** parsePodNetworkObjectName's interface name rule (shorthand only; JSON is not checked). */
export function isValidShorthandInterface(name: string): boolean {
  return (
    Buffer.byteLength(name, "utf8") <= MAX_INTERFACE_NAME_BYTES && !/[ \t\n\v\f\r/]/.test(name)
  );
}

const HEX_PAIR = /^[0-9A-Fa-f]{2}$/;
const HEX_QUAD = /^[0-9A-Fa-f]{4}$/;
const MAC_OCTET_COUNTS = [6, 8, 20];

/**
 * net.ParseMAC as built into Multus v4.2.3 (Go 1.24) and v4.3.0 (Go 1.25): `00:00:5e:00:53:01`,
 * `00-00-5e-00-53-01` or `0000.5e00.5301`, of 6, 8 or 20 octets, one separator throughout.
 * (Go 1.26 also accepts bare hex; those Multus releases do not.)
 */
export function isGoMac(text: string): boolean {
  const separator = text[2];
  if (separator === ":" || separator === "-") {
    const octets = text.split(separator);
    return MAC_OCTET_COUNTS.includes(octets.length) && octets.every(o => HEX_PAIR.test(o));
  }
  if (text[4] !== ".") return false;
  const quads = text.split(".");
  return MAC_OCTET_COUNTS.includes(quads.length * 2) && quads.every(q => HEX_QUAD.test(q));
}

/** net.ParseIP: IPv4 dotted quad without leading zeros, or IPv6 (a zone is refused). */
export function isGoIP(text: string): boolean {
  return !text.includes("%") && (isIPv4(text) || isIPv6(text));
}

/** net.ParseCIDR: address, `/`, decimal prefix length (leading zeros allowed) within the family. */
export function isGoCIDR(text: string): boolean {
  const slash = text.indexOf("/");
  if (slash < 0) return false;
  const address = text.slice(0, slash);
  const prefix = text.slice(slash + 1);
  if (!isGoIP(address) || !/^[0-9]+$/.test(prefix)) return false;
  const maxPrefix = isIPv4(address) ? 32 : 128;
  return Number(prefix) <= maxPrefix;
}
