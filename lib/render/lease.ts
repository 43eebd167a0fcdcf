// The one renderer of MacvlanLease objects (admission and repair both lease through it).
import { LeaseOwner, MacvlanLease } from "../../crds/types";
import { leaseName } from "../ipam";
import { ANN_LEASE_NAD, ANN_RESERVATION, LABEL_POD_NAMESPACE, LABEL_SUBNET } from "../names";

export interface LeaseRequest {
  subnet: string;
  ip: string;
  mac: string;
  /** The pod's namespace, and its name and uid where known (generateName pods have none yet). */
  pod: { namespace: string; name?: string; uid?: string };
  node?: string;
  owner?: LeaseOwner;
  fixed: boolean;
  /** The reservation token admission stamps on pod and lease. */
  token: string;
  /** Dual stack: the pair's NAD (lib/names.ts dualNadName), recorded on both leases. */
  nad?: string;
}

export function renderLease(req: LeaseRequest): MacvlanLease {
  const { namespace, name, uid } = req.pod;
  return {
    apiVersion: "macvlan.dev/v1alpha1",
    kind: "MacvlanLease",
    metadata: {
      name: leaseName(req.subnet, req.ip),
      labels: { [LABEL_SUBNET]: req.subnet, [LABEL_POD_NAMESPACE]: namespace },
      annotations: {
        [ANN_RESERVATION]: req.token,
        ...(req.nad ? { [ANN_LEASE_NAD]: req.nad } : {}),
      },
    },
    spec: {
      subnet: req.subnet,
      ip: req.ip,
      mac: req.mac,
      podRef: { namespace, ...(name ? { name } : {}), ...(uid ? { uid } : {}) },
      ...(req.node ? { node: req.node } : {}),
      ...(req.owner ? { owner: req.owner } : {}),
      fixed: req.fixed,
    },
  };
}
