// MAC addresses a user fixes with the macvlan.dev/mac annotation (design §2: a fixed MAC must
// be unicast and not held by another lease of the subnet). Pure: the caller passes the leases.

/** A parsed MAC in canonical form (six lower-case two-digit hex octets joined by ":"), or why not. */
export type MacParse = { ok: true; mac: string } | { ok: false; error: string };

const MAC = /^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(?:\1[0-9a-fA-F]{2}){4}$/;
const EXAMPLE = "02:42:c6:12:64:07";

const octetsOf = (mac: string): number[] => mac.split(/[:-]/).map(h => parseInt(h, 16));
const canonical = (octets: readonly number[]): string =>
  octets.map(o => o.toString(16).padStart(2, "0")).join(":");

/**
 * Reads a fixed MAC: six two-digit hex octets separated by ":" (or "-"), in any case, returned
 * in canonical lower-case colon form, the form leases and the Multus selection carry. Refused,
 * with a message that says what to write instead: anything else (dotted, 8- or 20-octet forms),
 * a group address (the I/G bit, bit 0 of the first octet, set; the broadcast address is one),
 * and the all-zero address. Universally administered (vendor) MACs are accepted; the derived
 * default MACs are locally administered (bit 1 of the first octet set).
 */
export function parseUnicastMac(text: string): MacParse {
  const shown = JSON.stringify(String(text));
  if (typeof text !== "string" || !MAC.test(text.trim())) {
    return {
      ok: false,
      error: `${shown} is not a MAC address: write six two-digit hex octets separated by colons, e.g. ${EXAMPLE}`,
    };
  }
  const octets = octetsOf(text.trim());
  const mac = canonical(octets);
  if (octets.every(o => o === 0xff)) {
    return {
      ok: false,
      error: `${mac} is the broadcast MAC address, which no interface can own: use a unicast MAC, e.g. ${EXAMPLE}`,
    };
  }
  if (octets[0] & 0x01) {
    const fixed = canonical([octets[0] & 0xfe, ...octets.slice(1)]);
    return {
      ok: false,
      error: `${mac} is a multicast MAC address (the lowest bit of the first octet, the I/G bit, is set): use a unicast MAC with that bit clear, e.g. ${fixed}`,
    };
  }
  if (octets.every(o => o === 0)) {
    return {
      ok: false,
      error: `${mac} is the all-zero MAC address, which no interface can use: use a unicast MAC, e.g. ${EXAMPLE}`,
    };
  }
  return { ok: true, mac };
}

/** What macHeldByOther reads from a lease: its name and spec.mac. */
export interface MacHolder {
  name: string;
  mac?: string;
}

/**
 * The first lease other than `exceptLeaseName` whose MAC equals `mac`, compared in canonical
 * form (so 02:AB:… and 02-ab-… match); undefined when the MAC is not held. Pass the leases of
 * one subnet that still hold their address (two leases of one LAN segment must not share a MAC:
 * switches would send one pod's frames to the other); `exceptLeaseName` is the lease being
 * written, so rewriting a lease with its own MAC is not a conflict. A lease whose MAC does not
 * parse is compared by its lower-cased text.
 */
export function macHeldByOther<T extends MacHolder>(
  mac: string,
  leases: Iterable<T>,
  exceptLeaseName?: string,
): T | undefined {
  const key = (m: string): string => {
    const p = parseMacLoose(m);
    return p ?? m.trim().toLowerCase();
  };
  const want = key(mac);
  for (const lease of leases) {
    if (lease.name === exceptLeaseName || typeof lease.mac !== "string") continue;
    if (key(lease.mac) === want) return lease;
  }
  return undefined;
}

/**
 * Checks a fixed MAC for a lease: valid and unicast (parseUnicastMac), and not held by another
 * lease of the subnet (macHeldByOther). The error names the holder and says what to do.
 */
export function checkFixedMac(
  text: string,
  subnet: string,
  leases: Iterable<MacHolder>,
  exceptLeaseName?: string,
): MacParse {
  const parsed = parseUnicastMac(text);
  if (!parsed.ok) return parsed;
  const holder = macHeldByOther(parsed.mac, leases, exceptLeaseName);
  if (!holder) return parsed;
  return {
    ok: false,
    error: `MAC ${parsed.mac} is already used in MacvlanSubnet "${subnet}" by MacvlanLease ${holder.name}: choose another MAC, or remove the annotation to get the address's own derived MAC`,
  };
}

/** Canonical form of any six-octet MAC text (group addresses included), or undefined. */
function parseMacLoose(text: string): string | undefined {
  const t = text.trim();
  return MAC.test(t) ? canonical(octetsOf(t)) : undefined;
}
