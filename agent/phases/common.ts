// Types and small helpers the planner's phases share (pure). agent/plan.ts re-exports them.
import { createHash } from "node:crypto";
import type { MacvlanMode } from "../../crds/types";
import { effectiveParent } from "../../lib/validation/parent";
import {
  ROUTE_PROTOCOL,
  SHIM_ALIAS_PREFIX,
  type Family,
  type KernelAction,
  type KernelLink,
  type KernelRoute,
  type PlannedStep,
} from "../types";

/** Shim sysctls: answer ARP only where the reply would be routed (no ARP flux on the LAN),
 *  and never autoconfigure from router advertisements. */
export const SHIM_SYSCTLS: Record<
  "arpFilter" | "acceptRa" | "autoconf",
  { key: string; value: string }
> = {
  arpFilter: { key: "net/ipv4/conf/%s/arp_filter", value: "1" },
  acceptRa: { key: "net/ipv6/conf/%s/accept_ra", value: "0" },
  autoconf: { key: "net/ipv6/conf/%s/autoconf", value: "0" },
};

/** `<master>` or `<master>.<vlan>` (lib/validation/parent.ts, shared with the operator). */
export function parentName(spec: { master: string; vlan?: number }): string {
  return effectiveParent(spec) ?? spec.master;
}

/** Deterministic shim name for a parent: `mvshim-` + 8 hex of sha256(parent) = 15 chars. */
export function shimName(parent: string): string {
  return `mvshim-${createHash("sha256").update(parent).digest("hex").slice(0, 8)}`;
}

export const shimAlias = (parent: string) => `${SHIM_ALIAS_PREFIX}${parent}`;

/** A link the agent owns as a shim: macvlan with our alias. */
export const isOwnedShim = (l: KernelLink) =>
  l.kind === "macvlan" && (l.alias ?? "").startsWith(SHIM_ALIAS_PREFIX);

export const isOwnedRoute = (r: KernelRoute) => r.protocol === String(ROUTE_PROTOCOL);

export const defaultMetric = (f: Family) => (f === 6 ? 1024 : 0);

/** Event reasons (also used for the first problem of a not-ready subnet). */
export type Reason =
  | "ShimReady"
  | "ParentReady"
  | "InvalidSubnet"
  | "ParentMissing"
  | "ParentConflict"
  | "ParentFailed"
  | "ShimConflict"
  | "ShimFailed"
  | "NodeAddressMissing"
  | "RouteConflict"
  | "RouteFailed";

export interface Problem {
  reason: Reason;
  message: string;
}

export interface SubnetPlan {
  subnet: string;
  mode: MacvlanMode;
  family?: Family;
  /** The subnet's CIDR as written (set once it parsed). */
  cidr?: string;
  parent?: string;
  shim?: string;
  src?: string;
  /** Local pod addresses that get a route. */
  routes: string[];
  /** Found while planning; each makes the subnet not ready on this node. */
  problems: Problem[];
  /** Worth saying, not a failure. */
  notes: string[];
}

export function problem(sp: SubnetPlan, reason: Reason, message: string): void {
  sp.problems.push({ reason, message });
}

/** The subnets that share one parent device. */
export interface ParentPlan {
  name: string;
  master: string;
  vlan: number;
  subnets: SubnetPlan[];
  /** Subnets whose pods the host reaches through the shim (bridge, vepa). */
  shimSubnets: SubnetPlan[];
  passthru: string[];
  wantMtu?: number;
  mtus: (number | undefined)[];
}

/** A host route the plan wants: `dst` via `dev` with source `src`. */
export interface DesiredRoute {
  family: Family;
  dst: string;
  dev: string;
  src?: string;
  subnet: string;
}

/** Collects the steps of one group (a parent) with shared bookkeeping. */
export class StepSink {
  constructor(
    readonly group: string,
    readonly subnets: string[],
    readonly steps: PlannedStep[] = [],
  ) {}

  add(action: KernelAction, reason: string, o: Partial<PlannedStep> = {}): void {
    this.steps.push({
      action,
      group: this.group,
      critical: false,
      subnets: this.subnets,
      reason,
      ...o,
    });
  }

  /** The same group, reported against fewer subnets (the shim's). */
  narrowed(subnets: string[]): StepSink {
    return new StepSink(this.group, subnets, this.steps);
  }
}
