// The KFC classes of our CRDs, registered once on import so `K8s(MacvlanSubnet)` works. The types
// themselves are in crds/types.ts (pure, no Kubernetes client); these classes implement them.
import { GenericKind, RegisterKind, modelToGroupVersionKind } from "kubernetes-fluent-client";
import * as api from "./types";

export class MacvlanSubnet extends GenericKind implements api.MacvlanSubnet {
  declare spec?: api.MacvlanSubnetSpec;
  declare status?: api.MacvlanSubnetStatus;
}

export class MacvlanLease extends GenericKind implements api.MacvlanLease {
  declare spec?: api.MacvlanLeaseSpec;
  declare status?: api.MacvlanLeaseStatus;
}

/**
 * Registers both kinds with KFC (with their plurals). Idempotent; it runs when this module is
 * imported (calling KFC's `RegisterKind` twice for one class throws "already registered").
 */
export function registerKinds(): void {
  if (!modelToGroupVersionKind(MacvlanSubnet.name)) RegisterKind(MacvlanSubnet, api.SubnetGVK);
  if (!modelToGroupVersionKind(MacvlanLease.name)) RegisterKind(MacvlanLease, api.LeaseGVK);
}
registerKinds();
