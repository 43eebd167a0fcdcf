// Small builders of the objects the decision tests read.
import { MacvlanLease, MacvlanSubnet, MacvlanSubnetSpec } from "../../../crds/types";
import { PodSnapshot } from "../../../lib/decide/pods";
import { leaseName } from "../../../lib/ipam";

export const NOW = new Date("2026-12-01T12:00:00Z");

export function subnet(name = "lan", spec: Partial<MacvlanSubnetSpec> = {}): MacvlanSubnet {
  return {
    metadata: { name, uid: `${name}-uid`, generation: 1 },
    spec: {
      master: "eth0",
      cidr: "198.18.100.0/24",
      ...(spec.cidr ? {} : { gateway: "198.18.100.1" }),
      ...spec,
    },
  };
}

export interface LeaseOptions {
  subnet?: string;
  ip?: string;
  mac?: string;
  namespace?: string;
  pod?: string;
  uid?: string;
  token?: string;
  phase?: "Reserved" | "Bound" | "Released";
  rv?: string;
  created?: string;
  releasedAt?: string;
  owner?: { name: string; ordinal: number };
}

export function lease(o: LeaseOptions = {}): MacvlanLease {
  const sub = o.subnet ?? "lan";
  const ip = o.ip ?? "198.18.100.10";
  const namespace = o.namespace ?? "team-a";
  return {
    metadata: {
      name: leaseName(sub, ip),
      uid: `lease-${ip}`,
      resourceVersion: o.rv ?? "100",
      creationTimestamp: new Date(o.created ?? "2026-12-01T11:00:00Z"),
      annotations: o.token ? { "macvlan.dev/reservation": o.token } : {},
    },
    spec: {
      subnet: sub,
      ip,
      mac: o.mac ?? "02:00:00:00:00:10",
      podRef: { namespace, ...(o.pod ? { name: o.pod } : {}), ...(o.uid ? { uid: o.uid } : {}) },
      ...(o.owner
        ? {
            owner: {
              kind: "StatefulSet" as const,
              namespace,
              name: o.owner.name,
              ordinal: o.owner.ordinal,
            },
          }
        : {}),
      fixed: false,
    },
    status: {
      phase: o.phase ?? "Reserved",
      reservedAt: "2026-12-01T11:00:00Z",
      ...(o.releasedAt ? { releasedAt: o.releasedAt } : {}),
    },
  };
}

export function pod(
  name: string,
  annotations: Record<string, string> = {},
  o: { namespace?: string; uid?: string; node?: string; ready?: boolean; owner?: string } = {},
): PodSnapshot {
  return {
    metadata: {
      name,
      namespace: o.namespace ?? "team-a",
      uid: o.uid ?? `${name}-uid`,
      annotations,
      labels: { app: "web" },
      ...(o.owner
        ? { ownerReferences: [{ kind: "StatefulSet", name: o.owner, controller: true }] }
        : {}),
    },
    spec: { nodeName: o.node ?? "node-a" },
    status: { conditions: [{ type: "Ready", status: o.ready === false ? "False" : "True" }] },
  };
}

/** The annotations admission writes for a lease. */
export const admitted = (ip: string, token: string, sub = "lan") => ({
  "macvlan.dev/subnet": sub,
  "macvlan.dev/ip": ip,
  "macvlan.dev/mac": "02:00:00:00:00:10",
  "macvlan.dev/reservation": token,
});
