// LAN conflicts (pure): the node agents report pool addresses that answer on the LAN from a MAC no
// lease has (status.nodes[].conflicts); the operator — the only writer of leases — records each as
// a MacvlanLease in phase Conflict (spec.mac: the foreign MAC, spec.node: who saw it), so
// admission never hands it out, and deletes it once no agent reports it any more (the address goes
// back to the pool). Snapshot in, writes out.
import { AddressConflict, MacvlanLease, MacvlanSubnet } from "../../crds/types";
import { leaseName } from "../ipam";
import { LABEL_SUBNET } from "../names";
import { isPoolLease } from "./pool";
import { event, preconditionOf, subnetTarget, Write } from "./writes";

export interface ReportedConflict extends AddressConflict {
  node: string;
}

/** Every address some agent reports for the subnet (first reporter by node name wins). */
export function reportedConflicts(subnet: MacvlanSubnet): Map<string, ReportedConflict> {
  const out = new Map<string, ReportedConflict>();
  const nodes = [...(subnet.status?.nodes ?? [])].sort((a, b) =>
    String(a?.node).localeCompare(String(b?.node)),
  );
  for (const n of nodes) {
    for (const c of n?.conflicts ?? []) {
      if (!c?.ip || !c.mac || out.has(c.ip)) continue;
      out.set(c.ip, { ...c, node: n.node });
    }
  }
  return out;
}

/** On a Conflict lease from its creation (before its status says so): its MAC is not ours. */
export const ANN_CONFLICT = "macvlan.dev/conflict";

export function renderConflictLease(subnet: string, c: ReportedConflict): MacvlanLease {
  return {
    apiVersion: "macvlan.dev/v1alpha1",
    kind: "MacvlanLease",
    metadata: {
      name: leaseName(subnet, c.ip),
      labels: { [LABEL_SUBNET]: subnet },
      annotations: { [ANN_CONFLICT]: "true" },
    },
    spec: { subnet, ip: c.ip, mac: c.mac, node: c.node, fixed: false },
  };
}

/** A lease nobody holds yet (a replica's pool lease, or a Released one): the address can move. */
const movable = (l: MacvlanLease) => l.status?.phase === "Released" || isPoolLease(l);

function recordConflict(
  subnet: MacvlanSubnet,
  c: ReportedConflict,
  lease: MacvlanLease | undefined,
  now: Date,
): Write[] {
  const name = subnet.metadata!.name!;
  const target = subnetTarget(subnet);
  const what = `${c.ip} answers on the LAN from ${c.mac} (seen by ${c.node}), a host that is not ours`;
  if (!lease) {
    return [
      {
        op: "createLease",
        lease: renderConflictLease(name, c),
        status: { phase: "Conflict", reservedAt: c.since ?? now.toISOString() },
      },
      event(target, "Warning", "AddressConflict", `${what}: never handed out while it answers`),
    ];
  }
  if (lease.status?.phase === "Conflict")
    return lease.spec?.mac === c.mac
      ? []
      : [{ op: "patchLease", lease: preconditionOf(lease), spec: { mac: c.mac } }];
  // Not handed to a pod yet: give it up, the next pass records the Conflict lease in its place.
  if (movable(lease))
    return [
      { op: "deleteLease", lease: preconditionOf(lease) },
      event(target, "Warning", "AddressConflict", `${what}: its unbound lease is withdrawn`),
    ];
  return []; // a pod holds it: the duplicate is the LAN host's doing; nothing to take back
}

/** The writes that make the subnet's Conflict leases match what the agents report. */
export function planConflictLeases(
  subnet: MacvlanSubnet,
  leases: MacvlanLease[],
  now: Date = new Date(),
): Write[][] {
  const name = subnet.metadata?.name;
  if (!name || subnet.metadata?.deletionTimestamp) return [];
  const reported = reportedConflicts(subnet);
  const byIp = new Map(
    leases.filter(l => l.spec?.subnet === name && l.spec.ip).map(l => [l.spec!.ip, l]),
  );
  const groups: Write[][] = [];
  for (const c of reported.values()) {
    const w = recordConflict(subnet, c, byIp.get(c.ip), now);
    if (w.length) groups.push(w);
  }
  for (const l of byIp.values()) {
    if (l.status?.phase !== "Conflict" || reported.has(l.spec!.ip)) continue;
    groups.push([
      { op: "deleteLease", lease: preconditionOf(l) },
      event(
        subnetTarget(subnet),
        "Normal",
        "AddressConflictCleared",
        `${l.spec!.ip} (${l.spec!.mac}) no longer answers on the LAN: back in the pool`,
      ),
    ]);
  }
  return groups;
}

export const isConflictLease = (l: MacvlanLease) => l.status?.phase === "Conflict";
