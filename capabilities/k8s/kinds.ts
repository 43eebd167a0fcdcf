// The kinds the capabilities use. crds/kinds.ts registers our own CRDs with KFC when imported;
// only the Multus NetworkAttachmentDefinition is registered here.
import { GenericKind, RegisterKind, modelToGroupVersionKind } from "kubernetes-fluent-client";
import { MacvlanLease, MacvlanSubnet } from "../../crds/kinds";

export class NetworkAttachmentDefinition extends GenericKind {
  declare spec?: { config: string };
}

if (!modelToGroupVersionKind(NetworkAttachmentDefinition.name)) {
  RegisterKind(NetworkAttachmentDefinition, {
    group: "k8s.cni.cncf.io",
    version: "v1",
    kind: "NetworkAttachmentDefinition",
    plural: "network-attachment-definitions",
  });
}

export { MacvlanLease, MacvlanSubnet };
