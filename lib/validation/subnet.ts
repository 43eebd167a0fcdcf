// Admission validation of MacvlanSubnet create/update. Pure: the caller passes the other
// subnets and this subnet's leases (capabilities/subnets/validate.ts lists them with KFC).
// Addresses, CIDRs and the usable set come from the IPAM engine (lib/ipam), so admission and
// allocation read every spec the same way; this file adds the field paths, messages and the
// rules only admission has (reserved gateway, overlaps, immutability, stranded leases).
import {
  DEFAULT_VLAN,
  IFNAME_MAX,
  MACVLAN_MODES,
  MTU_MAX,
  MTU_MIN,
  MacvlanLease,
  MacvlanSubnet,
  MacvlanSubnetSpec,
  SUBNET_NAME_MAX,
  VLAN_MAX,
  VLAN_MIN,
} from "../../crds/types";
import {
  IpFamily,
  ParsedCidr,
  ParsedIp,
  UnusableReason,
  UsablePool,
  bigIntToIp,
  cidrContains,
  cidrWithin,
  cidrsOverlap,
  formatCidr,
  intersect,
  isIpamError,
  isIpv4Mapped,
  reservedKind,
  tryParseIp,
  tryParseIpOrPrefix,
  tryParsePrefix,
} from "../ipam";
import { isDnsLabel, isValidInterfaceName } from "./names";
import { effectiveParent } from "./parent";

export type SubnetProblemCode =
  | "required"
  | "name-too-long"
  | "name-not-nad-safe"
  | "master-invalid"
  | "vlan-parent-too-long"
  | "vlan-out-of-range"
  | "mode-invalid"
  | "mtu-out-of-range"
  | "reuse-delay-invalid"
  | "cidr-malformed"
  | "cidr-host-bits"
  | "cidr-overlap"
  | "gateway-malformed"
  | "gateway-outside"
  | "gateway-reserved"
  | "default-gateway-missing"
  | "range-malformed"
  | "range-outside"
  | "range-order"
  | "range-overlap"
  | "exclude-malformed"
  | "exclude-outside"
  | "route-malformed"
  | "route-outside"
  | "route-conflict"
  | "namespace-invalid"
  | "selector-invalid"
  | "pool-empty"
  | "immutable-while-leased"
  | "strands-leases";

export interface SubnetProblem {
  /** Path of the offending field, e.g. `spec.ranges[1].start`. */
  field: string;
  /** Stable identifier of the rule, for tests and metrics. */
  code: SubnetProblemCode;
  /** What is wrong and what to do, without the field path (formatProblems prefixes it). */
  message: string;
}

export interface SubnetValidationContext {
  /** The stored object, on UPDATE. */
  old?: MacvlanSubnet;
  /** All MacvlanSubnets in the cluster (this one, if present, is ignored by name). */
  others: MacvlanSubnet[];
  /** This subnet's leases (label macvlan.dev/subnet=<name>). */
  leases: MacvlanLease[];
}

/** How many lease IPs a message names before it says "and N more". */
const MAX_NAMED = 5;

const q = (v: unknown): string => JSON.stringify(v) ?? String(v);
const isInt = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v);
const familyName = (f: IpFamily): string => `IPv${f}`;

/**
 * Validates a MacvlanSubnet on CREATE or UPDATE and returns every problem found (empty when
 * valid). On UPDATE (ctx.old set) an unchanged spec is always accepted, so metadata-only
 * updates such as removing the finalizer never fail on problems the stored object already had;
 * an object being deleted is accepted too.
 */
export function validateSubnet(
  subnet: MacvlanSubnet,
  ctx: SubnetValidationContext,
): SubnetProblem[] {
  const problems: SubnetProblem[] = [];
  const add = (field: string, code: SubnetProblemCode, message: string) =>
    problems.push({ field, code, message });

  if (subnet.metadata?.deletionTimestamp) return problems;
  if (ctx.old && sameJson(ctx.old.spec, subnet.spec)) return problems;

  const name = subnet.metadata?.name;
  if (typeof name === "string" && name.length > SUBNET_NAME_MAX) {
    add(
      "metadata.name",
      "name-too-long",
      `is ${name.length} characters; the subnet name is the value of the macvlan.dev/subnet label, so use at most ${SUBNET_NAME_MAX}`,
    );
  }

  // Multus takes only DNS-1123 labels as network names, so `macvlan-<name>` must be one (a '.'
  // never attaches); a dual-stack pair's NAD is `macvlan-<first>--<second>` (lib/names.ts), so
  // "--" would make a name readable as a pair. Checked on create only: an existing one keeps it.
  if (!ctx.old && typeof name === "string" && (name.includes(".") || name.includes("--"))) {
    add(
      "metadata.name",
      "name-not-nad-safe",
      `"${name}" holds ${name.includes(".") ? "a '.'" : '"--"'}: the subnet's NAD name macvlan-<subnet> must be a DNS label Multus accepts, and "--" joins the two subnets of a dual-stack NAD; use single '-'`,
    );
  }

  const spec = subnet.spec;
  if (!spec || typeof spec !== "object") {
    add("spec", "required", "is required: set at least spec.master and spec.cidr");
    return problems;
  }

  checkLink(spec, add);
  const prefix = checkCidr(spec, add);
  const gateway = checkGateway(spec, prefix, add);
  const ranges = checkRanges(spec, prefix, add);
  const exclusions = checkExclusions(spec, prefix, add);
  checkRoutes(spec, prefix, add);
  checkAccess(spec, add);

  // The usable set as the allocator computes it; undefined when lib/ipam cannot build it
  // from this spec (the field checks above report why) and then the checks that need it skip.
  const pool = prefix ? poolOf(name, spec) : undefined;
  if (pool && gateway.ok && ranges.ok && exclusions.ok && pool.total === 0n) {
    add(
      spec.ranges?.length ? "spec.ranges" : "spec.cidr",
      "pool-empty",
      "leaves no address to hand out once the reserved addresses (IPv4 network and broadcast, IPv6 anycast), the gateway and the exclusions are removed: widen spec.ranges or remove exclusions",
    );
  }

  if (prefix) checkOverlaps(subnet, spec, prefix, pool, ctx.others, add);
  checkLeases(spec, pool, ctx, add);
  return problems;
}

/** One line for an admission response: `MacvlanSubnet "x" is invalid: spec.cidr: ...; ...`. */
export function formatProblems(problems: readonly SubnetProblem[], name?: string): string {
  const subject = name ? `MacvlanSubnet ${q(name)}` : "MacvlanSubnet";
  if (problems.length === 0) return `${subject} is valid`;
  const list = problems.map(p => `${p.field}: ${p.message}`).join("; ");
  return `${subject} is invalid: ${list}`;
}

type Add = (field: string, code: SubnetProblemCode, message: string) => void;

function checkLink(spec: MacvlanSubnetSpec, add: Add) {
  const { master, vlan, mode, mtu, reuseDelaySeconds } = spec;
  if (master === undefined || master === "") {
    add("spec.master", "required", "is required: name the parent NIC on the nodes, e.g. eth0");
  } else if (!isValidInterfaceName(master)) {
    add(
      "spec.master",
      "master-invalid",
      `${q(master)} is not a valid Linux interface name: use 1 to ${IFNAME_MAX} characters without '/', ':' or whitespace, not "." or "..", e.g. eth0`,
    );
  }
  if (vlan !== undefined && (!isInt(vlan) || vlan < VLAN_MIN || vlan > VLAN_MAX)) {
    add(
      "spec.vlan",
      "vlan-out-of-range",
      `${q(vlan)} is not a VLAN id: use an integer from 1 to ${VLAN_MAX}, or 0 for untagged`,
    );
  } else if (isInt(vlan) && vlan > 0 && isValidInterfaceName(master)) {
    const parent = effectiveParent(spec) ?? master;
    if (parent.length > IFNAME_MAX) {
      add(
        "spec.master",
        "vlan-parent-too-long",
        `with vlan ${vlan} the parent interface is ${parent}, longer than the ${IFNAME_MAX} characters Linux allows: use a master name of at most ${IFNAME_MAX - 1 - String(vlan).length} characters`,
      );
    }
  }
  if (mode !== undefined && !MACVLAN_MODES.includes(mode)) {
    add(
      "spec.mode",
      "mode-invalid",
      `${q(mode)} is not a macvlan mode: use one of ${MACVLAN_MODES.join(", ")}`,
    );
  }
  if (mtu !== undefined && (!isInt(mtu) || mtu < MTU_MIN || mtu > MTU_MAX)) {
    add(
      "spec.mtu",
      "mtu-out-of-range",
      `${q(mtu)} is out of range: use an integer from ${MTU_MIN} to ${MTU_MAX}`,
    );
  } else if (isInt(mtu) && mtu < 1280 && tryParsePrefix(spec.cidr)?.family === 6) {
    add("spec.mtu", "mtu-out-of-range", `${mtu} is too small for IPv6: use at least 1280`);
  }
  if (reuseDelaySeconds !== undefined && (!isInt(reuseDelaySeconds) || reuseDelaySeconds < 0)) {
    add(
      "spec.reuseDelaySeconds",
      "reuse-delay-invalid",
      `${q(reuseDelaySeconds)} is invalid: use a whole number of seconds, 0 or more`,
    );
  }
}

function checkCidr(spec: MacvlanSubnetSpec, add: Add): ParsedCidr | undefined {
  const { cidr } = spec;
  if (cidr === undefined || cidr === "") {
    add(
      "spec.cidr",
      "required",
      "is required: give the subnet in CIDR notation, e.g. 198.18.100.0/24",
    );
    return undefined;
  }
  const prefix = tryParsePrefix(cidr);
  if (!prefix) {
    const hint = isIpv4Mapped(String(cidr).split("/")[0])
      ? "IPv4-mapped IPv6 addresses are not allowed, write the IPv4 network"
      : "write it like 198.18.100.0/24 or 2001:db8:100::/64";
    add("spec.cidr", "cidr-malformed", `${q(cidr)} is not a network in CIDR notation: ${hint}`);
    return undefined;
  }
  if (prefix.hostBitsSet) {
    add(
      "spec.cidr",
      "cidr-host-bits",
      `${cidr} has host bits set: use the network address ${formatCidr(prefix)}`,
    );
    return undefined;
  }
  return prefix;
}

/**
 * Addresses a router cannot have, read as lib/ipam reserves them (address.ts reservedKind),
 * so none of them is handed out to pods either: the IPv4 network and broadcast addresses, the
 * IPv6 subnet-router anycast address (RFC 4291 2.6.1; none on a /127, RFC 6164) and, in a /64
 * or larger, the RFC 2526 reserved subnet anycast addresses.
 */
function describeReserved(p: ParsedCidr, a: ParsedIp): string | undefined {
  switch (reservedKind(p, a.value)) {
    case "network":
      return "the network address";
    case "broadcast":
      return "the broadcast address";
    case "subnet-router-anycast":
      return "the subnet-router anycast address (RFC 4291 2.6.1)";
    case "reserved-anycast":
      return "a reserved subnet anycast address (RFC 2526: interface identifiers fdff:ffff:ffff:ff80 to fdff:ffff:ffff:ffff)";
    default:
      return undefined;
  }
}

/** Checks one address field against the subnet; returns it when usable. */
function checkAddrIn(
  field: string,
  value: unknown,
  prefix: ParsedCidr | undefined,
  add: Add,
  codes: { malformed: SubnetProblemCode; outside: SubnetProblemCode },
  what: string,
): ParsedIp | undefined {
  const a = typeof value === "string" ? tryParseIp(value) : undefined;
  if (!a) {
    const hint =
      typeof value === "string" && isIpv4Mapped(value)
        ? "IPv4-mapped IPv6 addresses are not allowed, write the IPv4 address"
        : "write a plain IPv4 or IPv6 address, e.g. 198.18.100.1";
    add(field, codes.malformed, `${q(value)} is not an IP address: ${hint}`);
    return undefined;
  }
  if (!prefix) return a;
  if (a.family !== prefix.family) {
    add(
      field,
      codes.outside,
      `${value} is ${familyName(a.family)} but spec.cidr ${formatCidr(prefix)} is ${familyName(prefix.family)}: ${what} must be in the subnet's address family`,
    );
    return undefined;
  }
  if (!cidrContains(prefix, a)) {
    add(
      field,
      codes.outside,
      `${value} is outside spec.cidr ${formatCidr(prefix)}: ${what} must be inside the subnet`,
    );
    return undefined;
  }
  return a;
}

function checkGateway(spec: MacvlanSubnetSpec, prefix: ParsedCidr | undefined, add: Add) {
  if (spec.podDefaultGateway === true && (spec.gateway === undefined || spec.gateway === "")) {
    add(
      "spec.podDefaultGateway",
      "default-gateway-missing",
      "true requires spec.gateway: set it to the LAN router the pods' default route should use",
    );
  }
  if (spec.gateway === undefined) return { ok: true };
  const a = checkAddrIn(
    "spec.gateway",
    spec.gateway,
    prefix,
    add,
    { malformed: "gateway-malformed", outside: "gateway-outside" },
    "the gateway (the LAN router)",
  );
  if (!a) return { ok: false };
  const reserved = prefix && describeReserved(prefix, a);
  if (reserved) {
    add(
      "spec.gateway",
      "gateway-reserved",
      `${spec.gateway} is ${reserved} of ${formatCidr(prefix)}: use the router's own address, e.g. ${bigIntToIp(a.family, prefix.first + 1n)}`,
    );
    return { ok: false };
  }
  return { ok: true };
}

function checkRanges(spec: MacvlanSubnetSpec, prefix: ParsedCidr | undefined, add: Add) {
  const { ranges } = spec;
  let ok = true;
  if (ranges === undefined) return { ok };
  if (!Array.isArray(ranges)) {
    add("spec.ranges", "range-malformed", "must be a list of {start, end}");
    return { ok: false };
  }
  const seen: { index: number; lo: bigint; hi: bigint }[] = [];
  ranges.forEach((r, i) => {
    const base = `spec.ranges[${i}]`;
    if (!r || typeof r !== "object") {
      add(base, "range-malformed", "must be an object {start, end}");
      ok = false;
      return;
    }
    const codes = { malformed: "range-malformed", outside: "range-outside" } as const;
    const start = checkAddrIn(`${base}.start`, r.start, prefix, add, codes, "a range");
    const end = checkAddrIn(`${base}.end`, r.end, prefix, add, codes, "a range");
    if (!start || !end) {
      ok = false;
      return;
    }
    if (start.family !== end.family) {
      add(
        base,
        "range-outside",
        `start ${r.start} is ${familyName(start.family)} but end ${r.end} is ${familyName(end.family)}: use one address family`,
      );
      ok = false;
      return;
    }
    if (start.value > end.value) {
      add(base, "range-order", `start ${r.start} is after end ${r.end}: swap them`);
      ok = false;
      return;
    }
    const other = seen.find(s => start.value <= s.hi && s.lo <= end.value);
    if (other) {
      add(
        base,
        "range-overlap",
        `${r.start}-${r.end} overlaps spec.ranges[${other.index}]: merge them into one range`,
      );
      ok = false;
    }
    seen.push({ index: i, lo: start.value, hi: end.value });
  });
  return { ok };
}

function checkExclusions(spec: MacvlanSubnetSpec, prefix: ParsedCidr | undefined, add: Add) {
  const { exclude } = spec;
  let ok = true;
  if (exclude === undefined) return { ok };
  if (!Array.isArray(exclude)) {
    add("spec.exclude", "exclude-malformed", "must be a list of IP addresses or CIDRs");
    return { ok: false };
  }
  exclude.forEach((e, i) => {
    const field = `spec.exclude[${i}]`;
    const p = tryParseIpOrPrefix(e);
    if (!p) {
      add(
        field,
        "exclude-malformed",
        `${q(e)} is neither an IP address nor a CIDR: write e.g. 198.18.100.5 or 198.18.100.16/28`,
      );
      ok = false;
      return;
    }
    if (p.hostBitsSet) {
      add(field, "exclude-malformed", `${e} has host bits set: use ${formatCidr(p)}`);
      ok = false;
      return;
    }
    if (prefix && !cidrWithin(p, prefix)) {
      add(
        field,
        "exclude-outside",
        `${e} is not inside spec.cidr ${formatCidr(prefix)}: exclusions must lie inside the subnet, remove it or narrow it`,
      );
      ok = false;
    }
  });
  return { ok };
}

function checkRoutes(spec: MacvlanSubnetSpec, prefix: ParsedCidr | undefined, add: Add) {
  const { routes } = spec;
  if (routes === undefined) return;
  if (!Array.isArray(routes)) {
    add("spec.routes", "route-malformed", "must be a list of {dst, gw}");
    return;
  }
  routes.forEach((r, i) => {
    const base = `spec.routes[${i}]`;
    if (!r || typeof r !== "object") {
      add(base, "route-malformed", "must be an object {dst, gw}");
      return;
    }
    const dst = typeof r.dst === "string" ? tryParsePrefix(r.dst) : undefined;
    if (!dst) {
      const single = typeof r.dst === "string" ? tryParseIp(r.dst) : undefined;
      const hint = single
        ? `write ${r.dst}/${single.family === 4 ? 32 : 128} for a single host`
        : "write a network in CIDR notation, e.g. 198.18.200.0/24";
      add(`${base}.dst`, "route-malformed", `${q(r.dst)} is not a CIDR: ${hint}`);
    } else if (dst.hostBitsSet) {
      add(`${base}.dst`, "route-malformed", `${r.dst} has host bits set: use ${formatCidr(dst)}`);
    } else if (prefix && dst.family !== prefix.family) {
      add(
        `${base}.dst`,
        "route-outside",
        `${r.dst} is ${familyName(dst.family)} but the subnet is ${familyName(prefix.family)}: a route via net1 must be in the subnet's address family`,
      );
    } else if (dst.prefixLength === 0 && spec.podDefaultGateway === true) {
      add(
        `${base}.dst`,
        "route-conflict",
        `${r.dst} is a default route and spec.podDefaultGateway is true, so the pod would get two default routes: remove this route or podDefaultGateway`,
      );
    }
    if (r.gw === undefined) return;
    const gw = checkAddrIn(
      `${base}.gw`,
      r.gw,
      prefix,
      add,
      { malformed: "route-malformed", outside: "route-outside" },
      "a route's next hop (reached on net1)",
    );
    const reserved = gw && prefix && describeReserved(prefix, gw);
    if (reserved) {
      add(
        `${base}.gw`,
        "route-outside",
        `${r.gw} is ${reserved} of ${formatCidr(prefix)}: use the next-hop router's own address`,
      );
    }
  });
}

function checkAccess(spec: MacvlanSubnetSpec, add: Add) {
  const { namespaces, namespaceSelector } = spec;
  if (namespaces !== undefined) {
    if (!Array.isArray(namespaces)) {
      add("spec.namespaces", "namespace-invalid", "must be a list of namespace names");
    } else {
      const seen = new Set<string>();
      namespaces.forEach((ns, i) => {
        if (!isDnsLabel(ns)) {
          add(
            `spec.namespaces[${i}]`,
            "namespace-invalid",
            `${q(ns)} is not a namespace name: use a DNS label (lowercase letters, digits and '-', at most 63 characters, starting and ending with a letter or digit)`,
          );
        } else if (seen.has(ns)) {
          add(
            `spec.namespaces[${i}]`,
            "namespace-invalid",
            `${ns} is listed twice: remove the duplicate`,
          );
        }
        if (typeof ns === "string") seen.add(ns);
      });
    }
  }
  const exprs = namespaceSelector?.matchExpressions;
  if (exprs !== undefined && !Array.isArray(exprs)) {
    add(
      "spec.namespaceSelector.matchExpressions",
      "selector-invalid",
      "must be a list of requirements",
    );
    return;
  }
  exprs?.forEach((e, i) => {
    const field = `spec.namespaceSelector.matchExpressions[${i}]`;
    const ops = ["In", "NotIn", "Exists", "DoesNotExist"];
    if (!e || typeof e.key !== "string" || e.key === "") {
      add(`${field}.key`, "selector-invalid", "is required: name a namespace label key");
    }
    if (!e || !ops.includes(e.operator)) {
      add(
        `${field}.operator`,
        "selector-invalid",
        `${q(e?.operator)} is not an operator: use one of ${ops.join(", ")}`,
      );
      return;
    }
    const n = Array.isArray(e.values) ? e.values.length : 0;
    if ((e.operator === "In" || e.operator === "NotIn") && n === 0) {
      add(`${field}.values`, "selector-invalid", `${e.operator} needs at least one value`);
    } else if ((e.operator === "Exists" || e.operator === "DoesNotExist") && n > 0) {
      add(`${field}.values`, "selector-invalid", `${e.operator} takes no values: remove them`);
    }
  });
}

/**
 * The addresses a subnet can hand out, exactly as the allocator computes them (lib/ipam
 * UsablePool: ranges, or the whole CIDR when absent or empty, minus the reserved addresses
 * (IPv4 network and broadcast, IPv6 subnet-router and RFC 2526 anycast), the gateway and the
 * exclusions); undefined when lib/ipam rejects the spec.
 */
function poolOf(name: string | undefined, spec: MacvlanSubnetSpec): UsablePool | undefined {
  try {
    return new UsablePool(name ?? "", spec);
  } catch (e) {
    if (isIpamError(e, "Invalid")) return undefined;
    throw e;
  }
}

function checkOverlaps(
  subnet: MacvlanSubnet,
  spec: MacvlanSubnetSpec,
  prefix: ParsedCidr,
  mine: UsablePool | undefined,
  others: MacvlanSubnet[],
  add: Add,
) {
  const name = subnet.metadata?.name;
  // One LAN segment, however it is spelled: {master: eth0, vlan: 100} is eth0.100.
  const parent = effectiveParent(spec);
  for (const o of others) {
    const os = o.spec;
    if (!os || (name && o.metadata?.name === name)) continue;
    if (parent === undefined || effectiveParent(os) !== parent) continue;
    const op = tryParsePrefix(os.cidr);
    if (!op || !cidrsOverlap(prefix, op)) continue;
    // One LAN segment carved into several subnets with the same CIDR and disjoint pools is
    // fine; anything else would hand out one address twice or disagree on the prefix length.
    if (op.first === prefix.first && op.prefixLength === prefix.prefixLength) {
      // Without a pool of its own this spec's problems are reported on their fields. A stored
      // subnet whose spec lib/ipam rejects hands out nothing (its allocator cannot be built),
      // and any fix to it is checked against this subnet in turn.
      if (!mine) continue;
      const theirs = poolOf(o.metadata?.name, os);
      if (!theirs || intersect(mine.intervals, theirs.intervals).length === 0) continue;
    }
    const spelled =
      os.master === spec.master
        ? ""
        : ` (it names master ${os.master}, vlan ${os.vlan ?? DEFAULT_VLAN})`;
    add(
      "spec.cidr",
      "cidr-overlap",
      `${formatCidr(prefix)} overlaps MacvlanSubnet ${q(o.metadata?.name)} (${os.cidr}) on parent device ${parent}${spelled}: choose a CIDR that does not overlap, or use the same CIDR with disjoint spec.ranges`,
    );
  }
}

/** A lease that still holds its address: not Released, or Released but kept for a sticky owner. */
const holdsAddress = (l: MacvlanLease) =>
  l.status?.phase !== "Released" || l.spec?.owner !== undefined;

function describeLeases(leases: MacvlanLease[]): string {
  const named = leases.slice(0, MAX_NAMED).map(l => {
    const pod = l.spec?.podRef;
    const who = pod ? ` (${pod.namespace}/${pod.name ?? "?"})` : "";
    return `${l.spec?.ip}${who}`;
  });
  const more = leases.length > MAX_NAMED ? ` and ${leases.length - MAX_NAMED} more` : "";
  return `${leases.length} lease${leases.length === 1 ? "" : "s"}: ${named.join(", ")}${more}`;
}

function canonicalCidr(cidr: unknown): string {
  const p = typeof cidr === "string" ? tryParsePrefix(cidr) : undefined;
  return p ? formatCidr(p) : String(cidr);
}

function checkLeases(
  spec: MacvlanSubnetSpec,
  now: UsablePool | undefined,
  ctx: SubnetValidationContext,
  add: Add,
) {
  const leases = ctx.leases.filter(l => typeof l.spec?.ip === "string");
  if (leases.length === 0) return;
  const old = ctx.old?.spec;
  let linkChanged = false;
  if (old) {
    const fix =
      "delete the pods that use this subnet and wait until their leases are gone, or create a new MacvlanSubnet";
    const changes: [string, boolean][] = [
      ["spec.cidr", canonicalCidr(old.cidr) !== canonicalCidr(spec.cidr)],
      ["spec.master", old.master !== spec.master],
      ["spec.vlan", (old.vlan ?? DEFAULT_VLAN) !== (spec.vlan ?? DEFAULT_VLAN)],
    ];
    for (const [field, changed] of changes) {
      if (!changed) continue;
      linkChanged = true;
      add(
        field,
        "immutable-while-leased",
        `cannot change while the subnet has ${describeLeases(leases)}: ${fix}`,
      );
    }
  }
  // Without a pool (a spec lib/ipam rejects) the field problems are reported already.
  if (!now || linkChanged) return;

  // Leases the new spec would strand, grouped by the field that drops their address, as
  // the allocator's usable set says. Only leases that were usable under the old spec count,
  // so an old problem never blocks updates; when lib/ipam rejects the old spec, every lease
  // counts, as on create (fail closed).
  const before = old && poolOf(now.subnet, old);
  const stranded = new Map<string, MacvlanLease[]>();
  for (const l of leases.filter(holdsAddress)) {
    const a = tryParseIp(l.spec!.ip);
    if (!a) continue;
    const field = strandingField(now.unusableReason(a));
    if (!field || (before && !before.containsIp(a))) continue;
    stranded.set(field, [...(stranded.get(field) ?? []), l]);
  }
  for (const [field, list] of stranded) {
    const fix =
      field === "spec.gateway"
        ? "keep the gateway off leased addresses"
        : field.startsWith("spec.exclude")
          ? "do not exclude leased addresses"
          : "keep leased addresses inside spec.ranges";
    add(
      field,
      "strands-leases",
      `would strand ${describeLeases(list)}: ${fix}, or delete those pods first`,
    );
  }
}

/**
 * The field that makes a leased address of the subnet unusable; undefined when it is usable
 * or not the subnet's at all (another family, outside the CIDR: not this check's business).
 */
function strandingField(why: UnusableReason | undefined): string | undefined {
  switch (why?.kind) {
    case "network":
    case "broadcast":
    case "subnet-router-anycast":
    case "reserved-anycast":
      return "spec.cidr";
    case "gateway":
      return "spec.gateway";
    case "exclude":
      return `spec.exclude[${why.index}]`;
    case "ranges":
      return "spec.ranges";
    default:
      return undefined;
  }
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === "object") {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map(k => [k, sortKeys((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}
