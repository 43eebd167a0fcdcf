// The node agent's planner (pure): desired state from subnets and local pods, diffed against
// the observed kernel state, gives an ordered list of kernel actions; results give per-subnet
// readiness. No I/O, no clock. The work is done by named phases in agent/phases/:
//   parents  groupParents, planParentDevice          (phases/parents.ts)
//   shims    shimBlocked, planShimLink, planShimSysctlsAndUp, planSources, planShimAddresses,
//            staleShims                               (phases/shims.ts, phases/routes.ts)
//   routes   localPods, desiredPodRoutes, diffRoutes  (phases/routes.ts)
import {
  shimName,
  StepSink,
  type DesiredRoute,
  type ParentPlan,
  type Problem,
  type Reason,
  type SubnetPlan,
} from "./phases/common";
import { groupParents, planParentDevice } from "./phases/parents";
import {
  desiredPodRoutes,
  diffRoutes,
  foreignRoutes,
  localPods,
  nodeAddresses,
  staleShims,
} from "./phases/routes";
import {
  planShimAddresses,
  planShimLink,
  planShimSysctlsAndUp,
  planSources,
  shimBlocked,
  type SourceContext,
} from "./phases/shims";
import type { AddressConflict } from "../crds/types";
import type { PodAddress, PodLike, SubnetLike } from "./pods";
import type { KernelLink, KernelRoute, KernelState, PlannedStep, StepResult } from "./types";

export type { PodLike, SubnetLike, PodAddress, Problem, Reason, SubnetPlan };
export {
  SHIM_SYSCTLS,
  defaultMetric,
  isOwnedRoute,
  isOwnedShim,
  parentName,
  shimAlias,
  shimName,
} from "./phases/common";

export interface PlanInput {
  node: string;
  subnets: SubnetLike[];
  /** Pods the agent sees; only live pods on `node` count. */
  pods: PodLike[];
  kernel: KernelState;
  /** Fallback source addresses (downward API `status.hostIPs`). */
  nodeIPs?: string[];
  /** Manage the shim sysctls (default true). */
  manageSysctls?: boolean;
  /**
   * Strict reverse-path filtering (rp_filter=1) on the link that holds the node's source drops
   * pod replies that come back through the LAN router when the node is outside the pod's
   * subnet. "warn" (default) says so in the status; "loose" sets rp_filter=2 on that link.
   */
  rpFilter?: "warn" | "loose";
}

export interface Plan {
  steps: PlannedStep[];
  subnets: Record<string, SubnetPlan>;
  pods: PodAddress[];
  unresolved: { pod: string; reason: string }[];
}

interface PassContext extends SourceContext {
  links: Map<string, KernelLink>;
  manageSysctls: boolean;
  pods: PodAddress[];
  nodeAddrs: Set<string>;
  foreign: Map<string, KernelRoute>;
  /** Filled by the parents: shims to keep, routes to have. */
  desiredShims: Set<string>;
  desiredRoutes: Map<string, DesiredRoute>;
}

/** Everything one parent needs, in order: parent NIC, shim link, sysctls, addresses, routes. */
function planParent(p: ParentPlan, ctx: PassContext): PlannedStep[] {
  const out = new StepSink(
    `parent:${p.name}`,
    p.subnets.map(s => s.subnet),
  );
  const dev = planParentDevice(p, ctx.links, out);
  if (!dev.usable || shimBlocked(p)) return out.steps;
  const shimOut = out.narrowed(p.shimSubnets.map(s => s.subnet));
  // The subnets name their shim even when it cannot be made (the status says why).
  for (const s of p.shimSubnets) s.shim = shimName(p.name);
  const link = planShimLink(p, ctx.links, dev.mtu, shimOut);
  if (!link) return out.steps;
  ctx.desiredShims.add(link.shim);
  planShimSysctlsAndUp(link, ctx.kernel, ctx.manageSysctls, shimOut);
  planShimAddresses(link, planSources(p, dev, ctx, shimOut), shimOut);
  desiredPodRoutes(p.shimSubnets, link.shim, ctx.pods, ctx, ctx.desiredRoutes);
  return out.steps;
}

export function plan(input: PlanInput): Plan {
  const { kernel } = input;
  const { subnets, parents } = groupParents(input.subnets);
  const { pods, unresolved } = localPods(input.node, input.pods, input.subnets);
  const ctx: PassContext = {
    kernel,
    nodeIPs: input.nodeIPs ?? [],
    rpFilter: input.rpFilter,
    rpFixed: new Set(),
    links: new Map(kernel.links.map(l => [l.name, l])),
    manageSysctls: input.manageSysctls ?? true,
    pods,
    nodeAddrs: nodeAddresses(kernel.links),
    foreign: foreignRoutes(kernel),
    desiredShims: new Set(),
    desiredRoutes: new Map(),
  };
  const parentSteps = parents.flatMap(p => planParent(p, ctx));
  const routes = diffRoutes(kernel, ctx.desiredRoutes, s => subnets[s]?.parent);
  const steps = [
    ...routes.cleanup,
    ...parentSteps,
    ...routes.replace,
    ...staleShims(kernel, ctx.desiredShims),
  ];
  return { steps, subnets, pods, unresolved };
}

export interface SubnetReadiness {
  ready: boolean;
  /** Why (an Event reason): ShimReady/ParentReady, or the first problem's. */
  reason: Reason;
  shim?: string;
  /** The route source the node uses for this subnet's pods, while ready. */
  source?: string;
  /** Pool addresses found in use on the LAN (agent/probe), set by the controller. */
  conflicts?: AddressConflict[];
  message: string;
}

const hint = (err: string) =>
  /unknown device type/i.test(err)
    ? " (the kernel has no 802.1Q VLAN support: load module 8021q)"
    : "";

function describeFailure(r: StepResult): Problem {
  const a = r.step.action;
  const err = (r.error ?? "").trim();
  switch (a.op) {
    case "createVlan":
      return {
        reason: "ParentMissing",
        message: `parent ${a.name} is missing and could not be created (VLAN ${a.vlanId} on ${a.master}): ${err}${hint(err)}`,
      };
    case "createShim":
      return {
        reason: "ShimFailed",
        message: `shim ${a.name} on ${a.parent} could not be created: ${err}`,
      };
    case "replaceRoute":
    case "deleteRoute":
      return { reason: "RouteFailed", message: `${r.step.reason}: ${err}` };
    case "setUp":
    case "setMtu":
      return {
        reason: a.name.startsWith("mvshim-") ? "ShimFailed" : "ParentFailed",
        message: `${r.step.reason}: ${err}`,
      };
    default:
      return { reason: "ShimFailed", message: `${r.step.reason}: ${err}` };
  }
}

/** Per-subnet readiness from the plan and what applying it gave. The message stays the same
 *  while nothing changes (no pod counts), so it can go into the subnet status cheaply. */
export function summarize(p: Plan, results: StepResult[]): Record<string, SubnetReadiness> {
  const out: Record<string, SubnetReadiness> = {};
  for (const sp of Object.values(p.subnets)) {
    const mine = results.filter(r => r.step.subnets.includes(sp.subnet));
    const failed = mine.filter(r => r.outcome === "failed" && !r.step.optional);
    const warnings = mine.filter(r => r.outcome === "failed" && r.step.optional);
    const skipped = mine.filter(r => r.outcome === "skipped");
    const errors: Problem[] = [...sp.problems, ...failed.map(describeFailure)];
    if (skipped.length && !failed.length) {
      errors.push({
        reason: "ShimFailed",
        message: `${skipped.length} step(s) skipped after an earlier failure`,
      });
    }
    const ready = errors.length === 0;
    const parts: string[] = [];
    let reason: Reason;
    if (ready) {
      reason = sp.shim ? "ShimReady" : "ParentReady";
      parts.push(
        sp.shim
          ? `shim ${sp.shim} on ${sp.parent}` + (sp.src ? `, source ${sp.src}` : "")
          : `parent ${sp.parent} ready`,
      );
    } else {
      reason = errors[0].reason;
      parts.push(errors[0].message);
      if (errors.length > 1) parts.push(`and ${errors.length - 1} more problem(s)`);
    }
    parts.push(...sp.notes);
    if (warnings.length) parts.push(`warning: ${describeFailure(warnings[0]).message}`);
    out[sp.subnet] = {
      ready,
      reason,
      shim: sp.shim && !failedShim(mine) ? sp.shim : undefined,
      ...(ready && sp.shim && sp.src ? { source: sp.src } : {}),
      message: truncate(parts.join("; "), 480),
    };
  }
  return out;
}

function failedShim(results: StepResult[]): boolean {
  return results.some(
    r =>
      r.outcome !== "ok" &&
      (r.step.action.op === "createShim" || r.step.action.op === "createVlan"),
  );
}

function truncate(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}
