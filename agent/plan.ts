// The node agent's planner (pure): desired state from subnets and local pods, diffed against
// the observed kernel state, gives an ordered list of kernel actions; results give per-subnet
// readiness. No I/O, no clock.
import { effectiveParent } from "../lib/validation/parent";
import { createHash } from "node:crypto";
import type { MacvlanMode } from "../crds/types";
import { canonicalIP, cidrContains, familyOf, hostPrefix, parseCIDR, type ParsedCIDR } from "./ip";
import {
  isLivePodOn,
  resolvePodAddress,
  type PodAddress,
  type PodLike,
  type SubnetLike,
} from "./pods";
import {
  MAX_IFNAME,
  ROUTE_PROTOCOL,
  SHIM_ALIAS_PREFIX,
  type Family,
  type KernelAction,
  type KernelAddress,
  type KernelLink,
  type KernelRoute,
  type KernelState,
  type PlannedStep,
  type StepResult,
} from "./types";

export type { PodLike, SubnetLike, PodAddress };

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

function problem(sp: SubnetPlan, reason: Reason, message: string): void {
  sp.problems.push({ reason, message });
}

export interface SubnetPlan {
  subnet: string;
  mode: MacvlanMode;
  family?: Family;
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

export interface Plan {
  steps: PlannedStep[];
  subnets: Record<string, SubnetPlan>;
  pods: PodAddress[];
  unresolved: { pod: string; reason: string }[];
}

interface ParentPlan {
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

const modeOf = (s: SubnetLike): MacvlanMode => s.spec.mode ?? "bridge";

function usableAddrs(link: KernelLink | undefined, family: Family): KernelAddress[] {
  return (link?.addresses ?? []).filter(
    a => a.family === family && a.scope === "global" && !a.dadfailed && !a.tentative,
  );
}

/** The node's own address to use as the route source for a subnet. */
function pickSource(
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
function rpFilterOf(kernel: KernelState, link: string): number | undefined {
  const all = kernel.rpFilter?.all;
  const dev = kernel.rpFilter?.[link];
  if (all === undefined && dev === undefined) return undefined;
  return Math.max(Number(all ?? 0), Number(dev ?? 0));
}

export function plan(input: PlanInput): Plan {
  const { kernel } = input;
  const manageSysctls = input.manageSysctls ?? true;
  const links = new Map(kernel.links.map(l => [l.name, l]));
  const steps: PlannedStep[] = [];
  const subnets: Record<string, SubnetPlan> = {};
  const parents = new Map<string, ParentPlan>();
  const nodeAddrs = new Set(kernel.links.flatMap(l => l.addresses.map(a => a.local)));

  // 1. Subnets → parents.
  for (const s of [...input.subnets].sort((a, b) => a.name.localeCompare(b.name))) {
    const sp: SubnetPlan = { subnet: s.name, mode: modeOf(s), routes: [], problems: [], notes: [] };
    subnets[s.name] = sp;
    const spec = s.spec;
    const cidr = spec?.cidr ? parseCIDR(spec.cidr) : undefined;
    if (!spec?.master) {
      problem(sp, "InvalidSubnet", "spec.master is empty");
      continue;
    }
    if (!cidr) {
      problem(sp, "InvalidSubnet", `spec.cidr ${JSON.stringify(spec.cidr)} is not a CIDR`);
      continue;
    }
    sp.family = cidr.family;
    const vlan = spec.vlan ?? 0;
    if (!Number.isInteger(vlan) || vlan < 0 || vlan > 4094) {
      problem(sp, "InvalidSubnet", `spec.vlan ${vlan} is out of range 0-4094`);
      continue;
    }
    const pname = parentName(spec);
    sp.parent = pname;
    if (pname.length > MAX_IFNAME) {
      problem(sp, "InvalidSubnet", `parent name ${pname} is longer than ${MAX_IFNAME} characters`);
      continue;
    }
    let p = parents.get(pname);
    if (!p) {
      p = {
        name: pname,
        master: spec.master,
        vlan,
        subnets: [],
        shimSubnets: [],
        passthru: [],
        mtus: [],
      };
      parents.set(pname, p);
    }
    p.subnets.push(sp);
    if (spec.mtu) p.wantMtu = Math.max(p.wantMtu ?? 0, spec.mtu);
    if (sp.mode === "passthru") {
      p.passthru.push(s.name);
      sp.notes.push("mode passthru: the pod owns the parent NIC, no host shim");
    } else if (sp.mode === "private") {
      sp.notes.push("mode private: the kernel isolates these pods from the host, no host shim");
    } else {
      if (sp.mode === "vepa") sp.notes.push("mode vepa: host access needs hairpin on the switch");
      p.shimSubnets.push(sp);
      p.mtus.push(spec.mtu);
    }
  }

  // 2. Local pods → addresses.
  const pods: PodAddress[] = [];
  const unresolved: { pod: string; reason: string }[] = [];
  const seenIPs = new Set<string>();
  for (const pod of input.pods) {
    if (!isLivePodOn(pod, input.node)) continue;
    const r = resolvePodAddress(pod, input.subnets);
    if (r.kind === "unresolved") unresolved.push({ pod: r.pod, reason: r.reason });
    if (r.kind !== "address") continue;
    if (seenIPs.has(r.address.ip)) continue;
    seenIPs.add(r.address.ip);
    pods.push(r.address);
  }
  pods.sort((a, b) => a.ip.localeCompare(b.ip));

  // 3. Routes the kernel has.
  const ownedRoutes = kernel.routes.filter(isOwnedRoute);
  const foreignByKey = new Map(
    kernel.routes.filter(r => !isOwnedRoute(r)).map(r => [`${r.family}|${r.dst}|${r.metric}`, r]),
  );
  const desiredRoutes = new Map<
    string,
    { family: Family; dst: string; dev: string; src?: string; subnet: string }
  >();

  // 4. Per parent: parent NIC, shim, shim addresses, routes.
  const desiredShims = new Set<string>();
  const rpFixed = new Set<string>();
  const parentSteps: PlannedStep[] = [];
  for (const p of [...parents.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    const group = `parent:${p.name}`;
    const names = p.subnets.map(s => s.subnet);
    const add = (action: KernelAction, reason: string, o: Partial<PlannedStep> = {}) =>
      parentSteps.push({ action, group, critical: false, subnets: names, reason, ...o });

    const master = links.get(p.master);
    const parent = links.get(p.name);
    let parentMtu = parent?.mtu;
    if (!parent && p.vlan === 0) {
      for (const s of p.subnets)
        problem(s, "ParentMissing", `parent ${p.name} does not exist on this node`);
      continue;
    }
    if (!parent && !master) {
      for (const s of p.subnets)
        problem(
          s,
          "ParentMissing",
          `master ${p.master} of parent ${p.name} does not exist on this node`,
        );
      continue;
    }
    if (p.vlan > 0 && master) {
      if (p.wantMtu && master.mtu < p.wantMtu) {
        add(
          { op: "setMtu", name: master.name, mtu: p.wantMtu },
          `raise ${master.name} MTU to ${p.wantMtu} for ${p.name}`,
          { critical: true },
        );
      }
      if (!master.up)
        add({ op: "setUp", name: master.name }, `master ${master.name} is down`, {
          critical: true,
        });
    }
    if (!parent) {
      add(
        { op: "createVlan", name: p.name, master: p.master, vlanId: p.vlan, mtu: p.wantMtu },
        `parent ${p.name} is missing`,
        { critical: true },
      );
      parentMtu = p.wantMtu ?? master?.mtu ?? 1500;
      add({ op: "setUp", name: p.name }, `bring up new parent ${p.name}`, { critical: true });
    } else {
      if (
        parent.kind === "vlan" &&
        p.vlan > 0 &&
        parent.vlanId !== undefined &&
        parent.vlanId !== p.vlan
      ) {
        for (const s of p.subnets)
          problem(s, "ParentConflict", `${p.name} is VLAN ${parent.vlanId}, not ${p.vlan}`);
        continue;
      }
      if (p.wantMtu && parent.mtu < p.wantMtu) {
        add(
          { op: "setMtu", name: p.name, mtu: p.wantMtu },
          `raise ${p.name} MTU ${parent.mtu} → ${p.wantMtu}`,
          { critical: true },
        );
        parentMtu = p.wantMtu;
      }
      if (!parent.up)
        add({ op: "setUp", name: p.name }, `parent ${p.name} is down`, { critical: true });
    }

    if (!p.shimSubnets.length) continue;
    const shim = shimName(p.name);
    if (p.passthru.length) {
      for (const s of p.shimSubnets) {
        problem(
          s,
          "ParentConflict",
          `parent ${p.name} is taken by passthru subnet ${p.passthru.join(", ")}; no host shim`,
        );
      }
      continue;
    }
    desiredShims.add(shim);
    for (const s of p.shimSubnets) s.shim = shim;
    const shimNames = p.shimSubnets.map(s => s.subnet);
    const addS = (action: KernelAction, reason: string, o: Partial<PlannedStep> = {}) =>
      add(action, reason, { subnets: shimNames, ...o });
    const shimMtu = Math.min(...p.mtus.map(m => m ?? parentMtu ?? 1500));

    let existing = links.get(shim);
    let fresh = false;
    // A macvlan with our exact name on this parent but no alias yet: an earlier run stopped
    // between creating it and labelling it. Adopt it.
    const adoptable = existing?.kind === "macvlan" && !existing.alias && existing.parent === p.name;
    if (existing && !isOwnedShim(existing) && !adoptable) {
      for (const s of p.shimSubnets)
        problem(s, "ShimConflict", `link ${shim} exists and is not the agent's; left alone`);
      desiredShims.delete(shim);
      continue;
    }
    if (existing && adoptable) {
      addS(
        { op: "setAlias", name: shim, alias: shimAlias(p.name) },
        `adopt unlabelled shim ${shim}`,
        { critical: true },
      );
      existing = { ...existing, alias: shimAlias(p.name) };
    }
    const sound =
      existing !== undefined &&
      existing.parent === p.name &&
      existing.mode === "bridge" &&
      existing.alias === shimAlias(p.name);
    if (existing && !sound) {
      addS(
        { op: "deleteLink", name: shim },
        `shim ${shim} is on ${existing.parent} mode ${existing.mode}; recreate`,
        { critical: true },
      );
    }
    if (!existing || !sound) {
      fresh = true;
      addS(
        { op: "createShim", name: shim, parent: p.name, alias: shimAlias(p.name), mtu: shimMtu },
        `create shim ${shim} on ${p.name}`,
        { critical: true },
      );
    } else {
      if (existing.mtu !== shimMtu)
        addS({ op: "setMtu", name: shim, mtu: shimMtu }, `shim MTU ${existing.mtu} → ${shimMtu}`);
      if (existing.addrGenMode !== undefined && existing.addrGenMode !== "none") {
        addS({ op: "setAddrGenModeNone", name: shim }, "shim must not make IPv6 addresses", {
          optional: true,
        });
      }
    }
    if (manageSysctls) {
      const have = fresh ? {} : (kernel.sysctls[shim] ?? {});
      for (const [k, want] of Object.entries(SHIM_SYSCTLS) as [
        keyof typeof SHIM_SYSCTLS,
        { key: string; value: string },
      ][]) {
        if (have[k] !== want.value) {
          addS(
            { op: "setSysctl", key: want.key.replace("%s", shim), value: want.value },
            `shim sysctl ${want.key.replace("%s", shim)}=${want.value}`,
            { optional: true },
          );
        }
      }
    }
    if (fresh || !existing?.up)
      addS({ op: "setUp", name: shim }, `bring up shim ${shim}`, { critical: true });

    // Source addresses, and the node's IPv6 address on the shim (/128 nodad noprefixroute).
    const wantAddrs = new Map<string, { family: Family; address: string; prefixlen: number }>();
    for (const s of p.shimSubnets) {
      if (!s.family || s.problems.length) continue;
      const cidr = parseCIDR(input.subnets.find(x => x.name === s.subnet)!.spec.cidr)!;
      s.src = pickSource(s.family, cidr, parent, master, input.nodeIPs ?? []);
      if (!s.src) {
        if (s.family === 6) {
          problem(
            s,
            "NodeAddressMissing",
            `the node has no IPv6 address on ${p.name} to answer its pods from`,
          );
        } else {
          s.notes.push(`no IPv4 address on ${p.name}: the kernel picks the source`);
        }
        continue;
      }
      if (s.family === 6) wantAddrs.set(s.src, { family: 6, address: s.src, prefixlen: 128 });
      if (s.family === 4 && !cidrContains(cidr, s.src)) {
        // Pod replies to an address outside its subnet go through the LAN router and arrive on
        // the link that holds the address, not on the shim the route to the pod points at.
        const holder = kernel.links.find(
          l => !isOwnedShim(l) && l.addresses.some(a => a.local === s.src),
        );
        if (holder && rpFilterOf(kernel, holder.name) === 1) {
          const key = `net/ipv4/conf/${holder.name}/rp_filter`;
          if (input.rpFilter === "loose") {
            if (!rpFixed.has(key)) {
              rpFixed.add(key);
              addS({ op: "setSysctl", key, value: "2" }, `loose rp_filter on ${holder.name}`, {
                optional: true,
              });
            }
            s.notes.push(
              `rp_filter on ${holder.name} set to loose (2) so pod replies via the router pass`,
            );
          } else {
            s.notes.push(
              `warning: strict rp_filter on ${holder.name} drops pod replies that come back through the router; ` +
                `set net.ipv4.conf.${holder.name}.rp_filter=2 or run the agent with AGENT_RP_FILTER=loose`,
            );
          }
        }
      }
    }
    const shimAddrs = fresh ? [] : (existing?.addresses ?? []).filter(a => a.scope === "global");
    for (const a of shimAddrs) {
      const w = wantAddrs.get(a.local);
      if (w && a.prefixlen === w.prefixlen) {
        wantAddrs.delete(a.local);
        continue;
      }
      addS(
        {
          op: "deleteAddress",
          dev: shim,
          family: a.family,
          address: a.local,
          prefixlen: a.prefixlen,
        },
        `shim carries ${a.local}/${a.prefixlen}`,
      );
    }
    for (const w of wantAddrs.values()) {
      addS(
        { op: "addAddress", dev: shim, ...w },
        `node address ${w.address} on the shim answers the pods' neighbour solicitations`,
        { critical: true },
      );
    }

    for (const s of p.shimSubnets) {
      if (s.problems.length || !s.family) continue;
      for (const pa of pods.filter(x => x.subnet === s.subnet)) {
        if (nodeAddrs.has(pa.ip)) {
          s.notes.push(`pod ${pa.pod} has the node's own address ${pa.ip}; no route`);
          continue;
        }
        const dst = hostPrefix(pa.ip);
        const f = s.family;
        const foreign = foreignByKey.get(`${f}|${dst}|${defaultMetric(f)}`);
        if (foreign) {
          problem(
            s,
            "RouteConflict",
            `route ${dst} (proto ${foreign.protocol}) exists and is not the agent's; pod ${pa.pod} not routed`,
          );
          continue;
        }
        s.routes.push(pa.ip);
        desiredRoutes.set(`${f}|${dst}`, {
          family: f,
          dst,
          dev: shim,
          src: s.src,
          subnet: s.subnet,
        });
      }
    }
  }

  // 5. Route diff. Stale owned routes go first, so a moved address never collides.
  const have = new Map<string, KernelRoute>();
  for (const r of ownedRoutes) {
    const key = `${r.family}|${r.dst}`;
    const want = desiredRoutes.get(key);
    if (!want || r.metric !== defaultMetric(r.family) || have.has(key)) {
      steps.push({
        action: { op: "deleteRoute", family: r.family, dst: r.dst, dev: r.dev, metric: r.metric },
        group: "cleanup",
        critical: false,
        subnets: want ? [want.subnet] : [],
        reason: `route ${r.dst} via ${r.dev ?? "?"} is no longer wanted`,
      });
      continue;
    }
    have.set(key, r);
  }
  steps.push(...parentSteps);
  for (const [key, w] of desiredRoutes) {
    const r = have.get(key);
    if (
      r &&
      r.dev === w.dev &&
      (r.src ?? undefined) === w.src &&
      r.type === "unicast" &&
      !r.gateway
    )
      continue;
    steps.push({
      action: { op: "replaceRoute", family: w.family, dst: w.dst, dev: w.dev, src: w.src },
      group: `parent:${subnets[w.subnet].parent}`,
      critical: false,
      subnets: [w.subnet],
      reason: r
        ? `route ${w.dst} differs (dev ${r.dev}, src ${r.src ?? "-"})`
        : `route ${w.dst} for a local pod is missing`,
    });
  }

  // 6. Shims no subnet needs any more.
  for (const l of kernel.links) {
    if (isOwnedShim(l) && !desiredShims.has(l.name)) {
      steps.push({
        action: { op: "deleteLink", name: l.name },
        group: "cleanup",
        critical: false,
        subnets: [],
        reason: `shim ${l.name} (${l.alias}) is no longer used`,
      });
    }
  }

  return { steps, subnets, pods, unresolved };
}

export interface SubnetReadiness {
  ready: boolean;
  /** Why (an Event reason): ShimReady/ParentReady, or the first problem's. */
  reason: Reason;
  shim?: string;
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
