import { Capability, a } from "pepr";
import { MacvlanLease, MacvlanSubnet, NetworkAttachmentDefinition } from "../k8s/kinds";
import { forgetNad } from "./nads";
import { addFinalizer, reconcileSubnet } from "./reconcile";
import { validateSubnetRequest } from "./validate";
import { scheduleSubnetReconcile } from "./schedule";
import { LABEL_MANAGED_BY, LABEL_SUBNET, LABEL_SUBNET_DUAL, MANAGED_BY } from "../../lib/names";

export const Subnets = new Capability({
  name: "macvlan-subnets",
  description: "Validates MacvlanSubnets and keeps their NADs, status and finalizer true",
});

const { When } = Subnets;

When(MacvlanSubnet)
  .IsCreatedOrUpdated()
  .Mutate(addFinalizer)
  .Validate(req => validateSubnetRequest(req))
  .Reconcile(subnet => reconcileSubnet(subnet));
When(MacvlanLease)
  .IsCreatedOrUpdated()
  .Watch(lease => scheduleSubnetReconcile(lease.spec?.subnet ?? ""));
When(MacvlanLease)
  .IsDeleted()
  .Watch(lease => scheduleSubnetReconcile(lease.spec?.subnet ?? ""));
When(a.Namespace)
  .IsCreatedOrUpdated()
  .Watch(ns => {
    for (const label of [LABEL_SUBNET, LABEL_SUBNET_DUAL])
      scheduleSubnetReconcile(ns.metadata?.labels?.[label] ?? "");
  });
// A managed NAD deleted or edited by someone else: apply it again (a tenant may not swap its IPAM).
When(NetworkAttachmentDefinition)
  .IsDeleted()
  .WithLabel(LABEL_MANAGED_BY, MANAGED_BY)
  .Watch(nad => {
    const subnet = nad.metadata?.labels?.[LABEL_SUBNET] ?? "";
    forgetNad(nad.metadata?.namespace ?? "", nad.metadata?.name ?? "");
    scheduleSubnetReconcile(subnet, { force: true });
  });
When(NetworkAttachmentDefinition)
  .IsUpdated()
  .WithLabel(LABEL_MANAGED_BY, MANAGED_BY)
  .Watch(nad =>
    scheduleSubnetReconcile(nad.metadata?.labels?.[LABEL_SUBNET] ?? "", { force: true }),
  );
