// Registers our custom kinds with KFC once, whichever capability imports them first.
import { GenericKind, RegisterKind } from "kubernetes-fluent-client";
import { LeaseGVK, MacvlanLease, MacvlanSubnet, SubnetGVK } from "../../crds/types";

export class NetworkAttachmentDefinition extends GenericKind {
  declare spec?: { config: string };
}

const NadGVK = {
  group: "k8s.cni.cncf.io",
  version: "v1",
  kind: "NetworkAttachmentDefinition",
  plural: "network-attachment-definitions",
};

function register(model: typeof GenericKind, gvk: typeof SubnetGVK) {
  try {
    RegisterKind(model, gvk);
  } catch (e) {
    if (!String((e as Error).message).includes("already registered")) throw e;
  }
}

register(MacvlanSubnet, SubnetGVK);
register(MacvlanLease, LeaseGVK);
register(NetworkAttachmentDefinition, NadGVK);

export { MacvlanLease, MacvlanSubnet };
