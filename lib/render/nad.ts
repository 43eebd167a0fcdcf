// Renders the managed NetworkAttachmentDefinition for a subnet (design.md §2, "Counting and edge rules").
import { MacvlanSubnet } from "../../crds/types";
import { effectiveParent } from "../validation/parent";
import { LABEL_MANAGED_BY, LABEL_SUBNET, MANAGED_BY, nadName } from "../names";

export const CNI_VERSION = "1.0.0";

/** The parent device as the node sees it: `<master>.<vlan>` for a tagged subnet. */
export function parentDevice(subnet: MacvlanSubnet): string {
  return effectiveParent(subnet.spec!) ?? subnet.spec!.master;
}

export interface CniRoute {
  dst: string;
  gw?: string;
}

/**
 * Two half-default routes via the LAN gateway. They outrank the cluster network's default
 * route without deleting it, so the pod's egress leaves on net1 (no SNAT) even where Multus'
 * `default-route` cannot replace eth0's default (Multus 4.2 with netlink 1.3 reports default
 * routes as 0.0.0.0/0 and never deletes them); more specific cluster routes stay on eth0.
 */
export function halfDefaults(gateway: string): CniRoute[] {
  const dsts = gateway.includes(":") ? ["::/1", "8000::/1"] : ["0.0.0.0/1", "128.0.0.0/1"];
  return dsts.map(dst => ({ dst, gw: gateway }));
}

/** The CNI config JSON a subnet renders to. Addresses and MACs come per pod through runtimeConfig. */
export function renderNadConfig(subnet: MacvlanSubnet): string {
  const spec = subnet.spec!;
  const routes: CniRoute[] = (spec.routes ?? []).map(r =>
    r.gw ? { dst: r.dst, gw: r.gw } : { dst: r.dst },
  );
  if (spec.podDefaultGateway && spec.gateway) routes.push(...halfDefaults(spec.gateway));
  const config: Record<string, unknown> = {
    cniVersion: CNI_VERSION,
    name: nadName(subnet.metadata!.name!),
    type: "macvlan",
    master: parentDevice(subnet),
    mode: spec.mode ?? "bridge",
    ...(spec.mtu ? { mtu: spec.mtu } : {}),
    capabilities: { ips: true, mac: true },
    // The gateway stays off the address so routes without `gw` are on-link (design.md §4);
    // Multus' default-route selection puts the default route on net1 when podDefaultGateway is set.
    ipam: { type: "static", ...(routes.length ? { routes } : {}) },
  };
  return JSON.stringify(config);
}

export interface NetworkAttachmentDefinitionShape {
  apiVersion: "k8s.cni.cncf.io/v1";
  kind: "NetworkAttachmentDefinition";
  metadata: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    ownerReferences: {
      apiVersion: string;
      kind: string;
      name: string;
      uid: string;
      controller: boolean;
      blockOwnerDeletion: boolean;
    }[];
  };
  spec: { config: string };
}

/** The whole NAD object for one namespace, owned by the (cluster-scoped) subnet. */
export function renderNad(
  subnet: MacvlanSubnet,
  namespace: string,
): NetworkAttachmentDefinitionShape {
  const name = subnet.metadata!.name!;
  return {
    apiVersion: "k8s.cni.cncf.io/v1",
    kind: "NetworkAttachmentDefinition",
    metadata: {
      name: nadName(name),
      namespace,
      labels: { [LABEL_SUBNET]: name, [LABEL_MANAGED_BY]: MANAGED_BY },
      ownerReferences: [
        {
          apiVersion: "macvlan.dev/v1alpha1",
          kind: "MacvlanSubnet",
          name,
          uid: subnet.metadata!.uid!,
          controller: true,
          // The subnet's finalizer already orders deletion; do not make pods wait on NADs.
          blockOwnerDeletion: false,
        },
      ],
    },
    spec: { config: renderNadConfig(subnet) },
  };
}
