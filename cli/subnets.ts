// `kubectl macvlan subnets`: each subnet with CIDR, parent, usage, free, conflicts and per-node
// readiness. Counts come from the product's IPAM engine over the subnet's leases (the same
// allocator admission and the watcher build), not from a second implementation.
import { LEASE_PHASES, LeasePhase } from "../crds/types";
import { allocatorFromLeases, leaseRecord } from "../lib/decide/allocators";
import { isOrphaned, isPoolLease } from "../lib/decide/pool";
import { leaseName } from "../lib/ipam";
import { describe } from "../lib/k8s/errors";
import { parentDevice } from "../lib/render/nad";
import { Column, usageBar } from "./format";
import { MacvlanLease, MacvlanSubnet, Snapshot, nameOf } from "./snapshot";

export interface Conflict {
  kind: "DuplicateIP" | "DuplicateMAC" | "OutsidePool" | "InvalidIP" | "WrongName";
  ip: string;
  leases: string[];
  detail: string;
}

export interface NodeState {
  node: string;
  ready: boolean;
  message?: string;
}

export interface SubnetSummary {
  name: string;
  cidr: string;
  parent: string;
  mode: string;
  gateway?: string;
  total: string;
  allocated: number;
  free: string;
  /** Leases by phase (a lease without status counts as Reserved, as the allocator does). */
  phases: Record<LeasePhase, number>;
  /** Pre-leased addresses the admission replicas hold for pods to come. */
  pooled: number;
  conflicts: Conflict[];
  nodes: NodeState[];
  ready: { status: string; reason: string; message: string };
  deleting: boolean;
  /** Set when the spec cannot be read by the engine (the subnet hands out nothing). */
  error?: string;
}

const phaseOf = (l: MacvlanLease): LeasePhase => l.status?.phase ?? "Reserved";

export function leasesBySubnet(leases: readonly MacvlanLease[]): Map<string, MacvlanLease[]> {
  const by = new Map<string, MacvlanLease[]>();
  for (const l of leases) {
    const s = l.spec?.subnet ?? "";
    by.set(s, [...(by.get(s) ?? []), l]);
  }
  return by;
}

export function summarizeSubnet(
  subnet: MacvlanSubnet,
  leases: MacvlanLease[],
  now: Date,
): SubnetSummary {
  const spec = subnet.spec;
  const phases = Object.fromEntries(LEASE_PHASES.map(p => [p, 0])) as Record<LeasePhase, number>;
  for (const l of leases) phases[phaseOf(l)]++;
  const cond = subnet.status?.conditions?.find(c => c.type === "Ready");
  const summary: SubnetSummary = {
    name: nameOf(subnet),
    cidr: spec?.cidr ?? "",
    parent: spec ? safe(() => parentDevice(subnet), spec.master) : "",
    mode: spec?.mode ?? "bridge",
    gateway: spec?.gateway,
    total: "0",
    allocated: 0,
    free: "0",
    phases,
    pooled: leases.filter(l => isPoolLease(l) && !isOrphaned(l)).length,
    conflicts: [],
    nodes: (subnet.status?.nodes ?? []).map(n => ({
      node: n.node,
      ready: n.ready,
      message: n.message,
    })),
    ready: {
      status: cond?.status ?? "Unknown",
      reason: cond?.reason ?? "",
      message: cond?.message ?? "",
    },
    deleting: !!subnet.metadata?.deletionTimestamp,
  };
  try {
    const allocator = allocatorFromLeases(subnet, leases);
    const report = allocator.rebuild(leases.map(leaseRecord), now);
    Object.assign(summary, allocator.counters());
    summary.conflicts = conflictsOf(summary.name, leases, report);
  } catch (e) {
    summary.error = describe(e);
  }
  return summary;
}

function safe<T>(f: () => T, fallback: T): T {
  try {
    return f();
  } catch {
    return fallback;
  }
}

/** What should never be: two holders of one IP or MAC, a lease outside the pool or misnamed. */
function conflictsOf(
  subnet: string,
  leases: MacvlanLease[],
  report: { outside: string[]; invalid: string[]; duplicates: string[] },
): Conflict[] {
  const held = leases.filter(l => phaseOf(l) !== "Released");
  const namesWith = (pred: (l: MacvlanLease) => boolean) => held.filter(pred).map(nameOf);
  const out: Conflict[] = [];
  for (const ip of report.duplicates)
    out.push({
      kind: "DuplicateIP",
      ip,
      leases: leases.filter(l => l.spec?.ip === ip).map(nameOf),
      detail: `${ip} has more than one lease`,
    });
  for (const ip of report.outside)
    out.push({
      kind: "OutsidePool",
      ip,
      leases: namesWith(l => l.spec?.ip === ip),
      detail: `${ip} is leased but outside the subnet's ranges (spec changed after it was leased)`,
    });
  for (const ip of report.invalid)
    out.push({ kind: "InvalidIP", ip, leases: [], detail: `a lease names "${ip}", not an IP` });
  const byMac = new Map<string, MacvlanLease[]>();
  for (const l of held) {
    const mac = l.spec?.mac?.toLowerCase();
    if (mac) byMac.set(mac, [...(byMac.get(mac) ?? []), l]);
  }
  for (const [mac, ls] of byMac)
    if (ls.length > 1)
      out.push({
        kind: "DuplicateMAC",
        ip: ls.map(l => l.spec!.ip).join(","),
        leases: ls.map(nameOf),
        detail: `MAC ${mac} is leased ${ls.length} times`,
      });
  for (const l of leases) {
    const want = safe(() => leaseName(subnet, l.spec?.ip ?? ""), "");
    if (want && want !== nameOf(l))
      out.push({
        kind: "WrongName",
        ip: l.spec!.ip,
        leases: [nameOf(l)],
        detail: `lease ${nameOf(l)} should be named ${want} (the name is the address lock)`,
      });
  }
  return out;
}

export function summarizeSubnets(s: Pick<Snapshot, "subnets" | "leases" | "now">) {
  const by = leasesBySubnet(s.leases);
  return s.subnets
    .map(sub => summarizeSubnet(sub, by.get(nameOf(sub)) ?? [], s.now))
    .sort((a, b) => a.name.localeCompare(b.name));
}

const nodesCell = (s: SubnetSummary) => {
  if (!s.nodes.length) return "no agent report";
  const ready = s.nodes.filter(n => n.ready).length;
  const bad = s.nodes.filter(n => !n.ready).map(n => n.node);
  return `${ready}/${s.nodes.length} ready${bad.length ? ` (not: ${bad.join(",")})` : ""}`;
};

export const subnetColumns: Column<SubnetSummary>[] = [
  { header: "NAME", value: s => s.name + (s.deleting ? " (deleting)" : "") },
  { header: "CIDR", value: s => s.cidr },
  { header: "PARENT", value: s => s.parent },
  { header: "MODE", value: s => s.mode, wide: true },
  { header: "GATEWAY", value: s => s.gateway ?? "-", wide: true },
  {
    header: "USAGE",
    value: s => `${usageBar(BigInt(s.allocated), BigInt(s.total))} ${s.allocated}/${s.total}`,
  },
  { header: "FREE", value: s => s.free },
  { header: "RESERVED", value: s => String(s.phases.Reserved), wide: true },
  { header: "BOUND", value: s => String(s.phases.Bound), wide: true },
  { header: "RELEASED", value: s => String(s.phases.Released), wide: true },
  { header: "POOLED", value: s => String(s.pooled), wide: true },
  { header: "CONFLICTS", value: s => String(s.conflicts.length) },
  { header: "NODES", value: nodesCell },
  { header: "READY", value: s => `${s.ready.status} ${s.ready.reason}`.trim(), wide: true },
  { header: "MESSAGE", value: s => s.error ?? s.ready.message, wide: true },
];
