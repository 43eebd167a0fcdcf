// Shared types and constants of the node agent (design.md §4). No I/O here.

/**
 * Route protocol number that marks the agent's routes (`ip route … proto 77`).
 * 77 = 0x4d, ASCII "M" (macvlan). Registered here: it is unused in iproute2's rt_protos
 * (0-4 kernel, 8-18 routing daemons, 42 babel, 99 openr, 186-192 bgp/isis/ospf/rip/eigrp).
 * The agent only ever changes or deletes main-table routes that carry this protocol.
 */
export const ROUTE_PROTOCOL = 77;

/** Alias prefix that marks a link as one of the agent's shims: `pepr-macvlan:shim:<parent>`. */
export const SHIM_ALIAS_PREFIX = "pepr-macvlan:shim:";
/** Alias the agent sets on a VLAN parent it created (it never deletes parents). */
export const PARENT_ALIAS = "pepr-macvlan:parent";
/** Linux IFNAMSIZ - 1. */
export const MAX_IFNAME = 15;

export type Family = 4 | 6;

/** One network interface as `ip -j -d addr show` reports it. */
export interface KernelLink {
  name: string;
  index: number;
  /** `linkinfo.info_kind`: "macvlan", "vlan", "veth", … (undefined for plain NICs). */
  kind?: string;
  /** The lower device (`link`), for macvlan and vlan. */
  parent?: string;
  /** macvlan mode (`linkinfo.info_data.mode`). */
  mode?: string;
  /** VLAN id (`linkinfo.info_data.id`). */
  vlanId?: number;
  alias?: string;
  mtu: number;
  /** Administratively up (flag UP). */
  up: boolean;
  /** `inet6_addr_gen_mode` (eui64, none, …); undefined when IPv6 is off. */
  addrGenMode?: string;
  addresses: KernelAddress[];
}

export interface KernelAddress {
  family: Family;
  local: string;
  prefixlen: number;
  scope: string;
  secondary?: boolean;
  deprecated?: boolean;
  tentative?: boolean;
  dadfailed?: boolean;
  nodad?: boolean;
  noprefixroute?: boolean;
}

/** One main-table route as `ip -j [-6] route show table main` reports it. */
export interface KernelRoute {
  family: Family;
  /** Normalised with prefix length: `198.18.100.5/32`, `2001:db8::5/128`, `default`. */
  dst: string;
  dev?: string;
  /** `prefsrc` */
  src?: string;
  /** Number as a string ("77") or a name from rt_protos ("kernel", "boot", "static"). */
  protocol: string;
  metric: number;
  /** "unicast" unless the kernel says otherwise (blackhole, unreachable, …). */
  type: string;
  gateway?: string;
}

/** Per-device sysctls the agent cares about on its shims; undefined = could not read. */
export interface ShimSysctls {
  arpFilter?: string;
  acceptRa?: string;
  autoconf?: string;
}

export interface KernelState {
  links: KernelLink[];
  routes: KernelRoute[];
  /** Keyed by shim name, only for links that carry the shim alias. */
  sysctls: Record<string, ShimSysctls>;
  /** `net.ipv4.conf.<name>.rp_filter`, keyed by link name and "all"; missing = unknown. */
  rpFilter?: Record<string, string>;
}

/** What the kernel layer can do. Every action is idempotent on its own. */
export type KernelAction =
  | { op: "createVlan"; name: string; master: string; vlanId: number; mtu?: number }
  | { op: "setUp"; name: string }
  | { op: "setMtu"; name: string; mtu: number }
  /** Creates the shim down, in mode bridge, with alias and `addrgenmode none`. */
  | { op: "createShim"; name: string; parent: string; alias: string; mtu?: number }
  | { op: "setAlias"; name: string; alias: string }
  | { op: "setAddrGenModeNone"; name: string }
  | { op: "deleteLink"; name: string }
  | { op: "setSysctl"; key: string; value: string }
  | { op: "addAddress"; dev: string; family: Family; address: string; prefixlen: number }
  | { op: "deleteAddress"; dev: string; family: Family; address: string; prefixlen: number }
  | { op: "replaceRoute"; family: Family; dst: string; dev: string; src?: string }
  | { op: "deleteRoute"; family: Family; dst: string; dev?: string; metric: number };

/**
 * A planned action with bookkeeping for the applier:
 * - `group`: when a `critical` step of a group fails, the rest of that group is skipped
 *   (a shim cannot be made on a parent that could not be made, routes need the shim).
 * - `subnets`: whose per-node status a failure is reported in.
 */
export interface PlannedStep {
  action: KernelAction;
  group: string;
  critical: boolean;
  /** A failure is only a warning in the status (best-effort tuning such as sysctls). */
  optional?: boolean;
  subnets: string[];
  /** Human-readable why, for logs and Events. */
  reason: string;
}

export interface StepResult {
  step: PlannedStep;
  outcome: "ok" | "failed" | "skipped";
  error?: string;
}
