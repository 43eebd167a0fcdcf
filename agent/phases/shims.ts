// Phase 2 of the planner (pure): the host shim on a parent (link, sysctls, up) and the addresses
// on it: the route source per subnet and, for IPv6, the node's own /128 (design.md §4).
import { canonicalIP, cidrContains, familyOf, parseCIDR, type ParsedCIDR } from "../ip";
import type { Family, KernelAddress, KernelLink, KernelState } from "../types";
import {
  isOwnedShim,
  problem,
  shimAlias,
  shimName,
  SHIM_SYSCTLS,
  StepSink,
  type ParentPlan,
  type SubnetPlan,
} from "./common";
import type { ParentDevicePlan } from "./parents";

export interface ShimLinkPlan {
  shim: string;
  /** The shim is (re)created by these steps: the kernel has nothing of it yet. */
  fresh: boolean;
  /** The shim as observed (after adoption), when it is kept. */
  existing?: KernelLink;
}

/** Whether the shim can go on this parent at all; records the problem when not. */
export function shimBlocked(p: ParentPlan): boolean {
  if (!p.shimSubnets.length) return true;
  if (!p.passthru.length) return false;
  const msg = `parent ${p.name} is taken by passthru subnet ${p.passthru.join(", ")}; no host shim`;
  for (const s of p.shimSubnets) problem(s, "ParentConflict", msg);
  return true;
}

/**
 * Phase "shims", link: adopt, recreate or create the parent's shim (macvlan, mode bridge, our
 * alias), fix its MTU and address generation. Undefined when a foreign link holds the name.
 */
export function planShimLink(
  p: ParentPlan,
  links: Map<string, KernelLink>,
  parentMtu: number | undefined,
  out: StepSink,
): ShimLinkPlan | undefined {
  const shim = shimName(p.name);
  const alias = shimAlias(p.name);
  const shimMtu = Math.min(...p.mtus.map(m => m ?? parentMtu ?? 1500));
  let existing = links.get(shim);
  // A macvlan with our exact name on this parent but no alias yet: an earlier run stopped
  // between creating it and labelling it. Adopt it.
  const adoptable = existing?.kind === "macvlan" && !existing.alias && existing.parent === p.name;
  if (existing && !isOwnedShim(existing) && !adoptable) {
    for (const s of p.shimSubnets)
      problem(s, "ShimConflict", `link ${shim} exists and is not the agent's; left alone`);
    return undefined;
  }
  if (existing && adoptable) {
    out.add({ op: "setAlias", name: shim, alias }, `adopt unlabelled shim ${shim}`, {
      critical: true,
    });
    existing = { ...existing, alias };
  }
  const sound =
    existing !== undefined &&
    existing.parent === p.name &&
    existing.mode === "bridge" &&
    existing.alias === alias;
  if (existing && !sound) {
    out.add(
      { op: "deleteLink", name: shim },
      `shim ${shim} is on ${existing.parent} mode ${existing.mode}; recreate`,
      { critical: true },
    );
  }
  if (!existing || !sound) {
    out.add(
      { op: "createShim", name: shim, parent: p.name, alias, mtu: shimMtu },
      `create shim ${shim} on ${p.name}`,
      { critical: true },
    );
    return { shim, fresh: true };
  }
  if (existing.mtu !== shimMtu)
    out.add({ op: "setMtu", name: shim, mtu: shimMtu }, `shim MTU ${existing.mtu} → ${shimMtu}`);
  if (existing.addrGenMode !== undefined && existing.addrGenMode !== "none") {
    out.add({ op: "setAddrGenModeNone", name: shim }, "shim must not make IPv6 addresses", {
      optional: true,
    });
  }
  return { shim, fresh: false, existing };
}

/** Phase "shims", tuning: the shim sysctls that drifted, then bring the shim up. */
export function planShimSysctlsAndUp(
  link: ShimLinkPlan,
  kernel: KernelState,
  manageSysctls: boolean,
  out: StepSink,
): void {
  const { shim, fresh, existing } = link;
  if (manageSysctls) {
    const have = fresh ? {} : (kernel.sysctls[shim] ?? {});
    for (const [k, want] of Object.entries(SHIM_SYSCTLS) as [
      keyof typeof SHIM_SYSCTLS,
      { key: string; value: string },
    ][]) {
      if (have[k] === want.value) continue;
      const key = want.key.replace("%s", shim);
      out.add({ op: "setSysctl", key, value: want.value }, `shim sysctl ${key}=${want.value}`, {
        optional: true,
      });
    }
  }
  if (fresh || !existing?.up)
    out.add({ op: "setUp", name: shim }, `bring up shim ${shim}`, { critical: true });
}

function usableAddrs(link: KernelLink | undefined, family: Family): KernelAddress[] {
  return (link?.addresses ?? []).filter(
    a => a.family === family && a.scope === "global" && !a.dadfailed && !a.tentative,
  );
}

/** The node's own address to use as the route source for a subnet. */
export function pickSource(
  family: Family,
  cidr: ParsedCIDR,
  parent: KernelLink | undefined,
  master: KernelLink | undefined,
  nodeIPs: string[],
): string | undefined {
  const onLinks = [...usableAddrs(parent, family), ...usableAddrs(master, family)];
  const inside = onLinks.find(a => cidrContains(cidr, a.local));
  if (inside) return inside.local;
  const primary =
    onLinks.find(a => !a.secondary && !a.deprecated) ??
    onLinks.find(a => !a.deprecated) ??
    onLinks[0];
  if (primary) return primary.local;
  return nodeIPs.map(ip => canonicalIP(ip)).find(ip => ip && familyOf(ip) === family);
}

/** Effective IPv4 rp_filter of a link: max(all, link); undefined when unknown. */
export function rpFilterOf(kernel: KernelState, link: string): number | undefined {
  const all = kernel.rpFilter?.all;
  const dev = kernel.rpFilter?.[link];
  if (all === undefined && dev === undefined) return undefined;
  return Math.max(Number(all ?? 0), Number(dev ?? 0));
}

export interface SourceContext {
  kernel: KernelState;
  nodeIPs: string[];
  rpFilter?: "warn" | "loose";
  /** rp_filter keys already planned in this pass (one step per link). */
  rpFixed: Set<string>;
}

/**
 * Pod replies to a source outside the pod's subnet come back through the LAN router, on the link
 * that holds the source, not on the shim the route to the pod points at: strict rp_filter drops
 * them. Warn, or loosen it on request.
 */
function checkRpFilter(s: SubnetPlan, ctx: SourceContext, out: StepSink): void {
  const holder = ctx.kernel.links.find(
    l => !isOwnedShim(l) && l.addresses.some(a => a.local === s.src),
  );
  if (!holder || rpFilterOf(ctx.kernel, holder.name) !== 1) return;
  const key = `net/ipv4/conf/${holder.name}/rp_filter`;
  if (ctx.rpFilter !== "loose") {
    s.notes.push(
      `warning: strict rp_filter on ${holder.name} drops pod replies that come back through the router; ` +
        `set net.ipv4.conf.${holder.name}.rp_filter=2 or run the agent with AGENT_RP_FILTER=loose`,
    );
    return;
  }
  if (!ctx.rpFixed.has(key)) {
    ctx.rpFixed.add(key);
    out.add({ op: "setSysctl", key, value: "2" }, `loose rp_filter on ${holder.name}`, {
      optional: true,
    });
  }
  s.notes.push(`rp_filter on ${holder.name} set to loose (2) so pod replies via the router pass`);
}

/**
 * Phase "shims", sources: picks each shim subnet's route source (`s.src`) and returns the
 * addresses the shim must carry: the node's IPv6 source as /128 (Linux answers neighbour
 * solicitations only for addresses on the receiving interface).
 */
export function planSources(
  p: ParentPlan,
  dev: ParentDevicePlan,
  ctx: SourceContext,
  out: StepSink,
): Map<string, { family: Family; address: string; prefixlen: number }> {
  const want = new Map<string, { family: Family; address: string; prefixlen: number }>();
  for (const s of p.shimSubnets) {
    if (!s.family || !s.cidr || s.problems.length) continue;
    const cidr = parseCIDR(s.cidr)!;
    s.src = pickSource(s.family, cidr, dev.parent, dev.master, ctx.nodeIPs);
    if (!s.src) {
      if (s.family === 6) {
        const msg = `the node has no IPv6 address on ${p.name} to answer its pods from`;
        problem(s, "NodeAddressMissing", msg);
      } else {
        s.notes.push(`no IPv4 address on ${p.name}: the kernel picks the source`);
      }
      continue;
    }
    if (s.family === 6) want.set(s.src, { family: 6, address: s.src, prefixlen: 128 });
    if (s.family === 4 && !cidrContains(cidr, s.src)) checkRpFilter(s, ctx, out);
  }
  return want;
}

/** Phase "shims", addresses: removes what the shim should not carry, adds what it lacks. */
export function planShimAddresses(
  link: ShimLinkPlan,
  want: Map<string, { family: Family; address: string; prefixlen: number }>,
  out: StepSink,
): void {
  const pending = new Map(want);
  const have = link.fresh ? [] : (link.existing?.addresses ?? []).filter(a => a.scope === "global");
  for (const a of have) {
    const w = pending.get(a.local);
    if (w && a.prefixlen === w.prefixlen) {
      pending.delete(a.local);
      continue;
    }
    out.add(
      {
        op: "deleteAddress",
        dev: link.shim,
        family: a.family,
        address: a.local,
        prefixlen: a.prefixlen,
      },
      `shim carries ${a.local}/${a.prefixlen}`,
    );
  }
  for (const w of pending.values()) {
    out.add(
      { op: "addAddress", dev: link.shim, ...w },
      `node address ${w.address} on the shim answers the pods' neighbour solicitations`,
      { critical: true },
    );
  }
}
