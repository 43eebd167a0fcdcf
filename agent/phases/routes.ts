// Phase 3 of the planner (pure): local pods' addresses, the /32 (/128) host route each needs
// through its parent's shim, and the diff against the agent's routes in the kernel.
import { hostPrefix } from "../ip";
import {
  isLivePodOn,
  resolvePodAddresses,
  type PodAddress,
  type PodLike,
  type SubnetLike,
} from "../pods";
import type { KernelLink, KernelRoute, KernelState, PlannedStep } from "../types";
import {
  defaultMetric,
  isOwnedRoute,
  isOwnedShim,
  problem,
  type DesiredRoute,
  type SubnetPlan,
} from "./common";

export interface LocalPods {
  /** One entry per address, sorted by address. */
  pods: PodAddress[];
  unresolved: { pod: string; reason: string }[];
}

/** Phase "routes", input: the macvlan addresses of the live pods on this node. */
export function localPods(node: string, pods: PodLike[], subnets: SubnetLike[]): LocalPods {
  const out: PodAddress[] = [];
  const unresolved: { pod: string; reason: string }[] = [];
  const seen = new Set<string>();
  for (const pod of pods) {
    if (!isLivePodOn(pod, node)) continue;
    for (const r of resolvePodAddresses(pod, subnets)) {
      if (r.kind === "unresolved") unresolved.push({ pod: r.pod, reason: r.reason });
      if (r.kind !== "address" || seen.has(r.address.ip)) continue;
      seen.add(r.address.ip);
      out.push(r.address);
    }
  }
  out.sort((a, b) => a.ip.localeCompare(b.ip));
  return { pods: out, unresolved };
}

/** Routes in the kernel that are not the agent's, by family|dst|metric. */
export function foreignRoutes(kernel: KernelState): Map<string, KernelRoute> {
  return new Map(
    kernel.routes.filter(r => !isOwnedRoute(r)).map(r => [`${r.family}|${r.dst}|${r.metric}`, r]),
  );
}

/** Every address the node itself holds (a pod with one of them gets no route). */
export const nodeAddresses = (links: KernelLink[]) =>
  new Set(links.flatMap(l => l.addresses.map(a => a.local)));

/**
 * Phase "routes", desired: one host route per local pod of each ready shim subnet, via the shim
 * with the subnet's source. A foreign route to the same prefix is a conflict, never overwritten.
 */
export function desiredPodRoutes(
  shimSubnets: SubnetPlan[],
  shim: string,
  pods: PodAddress[],
  ctx: { nodeAddrs: Set<string>; foreign: Map<string, KernelRoute> },
  into: Map<string, DesiredRoute>,
): void {
  for (const s of shimSubnets) {
    if (s.problems.length || !s.family) continue;
    const f = s.family;
    for (const pa of pods.filter(x => x.subnet === s.subnet)) {
      if (ctx.nodeAddrs.has(pa.ip)) {
        s.notes.push(`pod ${pa.pod} has the node's own address ${pa.ip}; no route`);
        continue;
      }
      const dst = hostPrefix(pa.ip);
      const foreign = ctx.foreign.get(`${f}|${dst}|${defaultMetric(f)}`);
      if (foreign) {
        const msg = `route ${dst} (proto ${foreign.protocol}) exists and is not the agent's; pod ${pa.pod} not routed`;
        problem(s, "RouteConflict", msg);
        continue;
      }
      s.routes.push(pa.ip);
      into.set(`${f}|${dst}`, { family: f, dst, dev: shim, src: s.src, subnet: s.subnet });
    }
  }
}

export interface RouteDiff {
  /** Owned routes to delete; they go first, so a moved address never collides. */
  cleanup: PlannedStep[];
  /** Missing or different routes, each in its parent's group. */
  replace: PlannedStep[];
}

/** Phase "routes", diff: owned kernel routes against the desired ones. */
export function diffRoutes(
  kernel: KernelState,
  desired: Map<string, DesiredRoute>,
  parentOf: (subnet: string) => string | undefined,
): RouteDiff {
  const cleanup: PlannedStep[] = [];
  const have = new Map<string, KernelRoute>();
  for (const r of kernel.routes.filter(isOwnedRoute)) {
    const key = `${r.family}|${r.dst}`;
    const want = desired.get(key);
    if (want && r.metric === defaultMetric(r.family) && !have.has(key)) {
      have.set(key, r);
      continue;
    }
    cleanup.push({
      action: { op: "deleteRoute", family: r.family, dst: r.dst, dev: r.dev, metric: r.metric },
      group: "cleanup",
      critical: false,
      subnets: want ? [want.subnet] : [],
      reason: `route ${r.dst} via ${r.dev ?? "?"} is no longer wanted`,
    });
  }
  const replace: PlannedStep[] = [];
  for (const [key, w] of desired) {
    const r = have.get(key);
    const same =
      r && r.dev === w.dev && (r.src ?? undefined) === w.src && r.type === "unicast" && !r.gateway;
    if (same) continue;
    replace.push({
      action: { op: "replaceRoute", family: w.family, dst: w.dst, dev: w.dev, src: w.src },
      group: `parent:${parentOf(w.subnet)}`,
      critical: false,
      subnets: [w.subnet],
      reason: r
        ? `route ${w.dst} differs (dev ${r.dev}, src ${r.src ?? "-"})`
        : `route ${w.dst} for a local pod is missing`,
    });
  }
  return { cleanup, replace };
}

/** Phase "shims", cleanup: the agent's shims that no subnet needs any more. */
export function staleShims(kernel: KernelState, desired: Set<string>): PlannedStep[] {
  return kernel.links
    .filter(l => isOwnedShim(l) && !desired.has(l.name))
    .map(l => ({
      action: { op: "deleteLink", name: l.name },
      group: "cleanup",
      critical: false,
      subnets: [],
      reason: `shim ${l.name} (${l.alias}) is no longer used`,
    }));
}
