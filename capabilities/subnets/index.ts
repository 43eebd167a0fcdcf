import { Capability, a } from "pepr";
import { MacvlanLease, MacvlanSubnet } from "../k8s/kinds";
import { addFinalizer, reconcileSubnet } from "./reconcile";
import { validateSubnetRequest } from "./validate";
import { scheduleSubnetReconcile } from "./schedule";
import { LABEL_SUBNET } from "../../lib/names";

export const Subnets = new Capability({
  name: "macvlan-subnets",
  description: "Validates MacvlanSubnets and keeps their NADs, status and finalizer true",
});

const { When } = Subnets;

When(MacvlanSubnet)
  .IsCreatedOrUpdated()
  .Mutate(addFinalizer)
  .Validate(req => validateSubnetRequest(req))
  .Reconcile(reconcileSubnet);
When(MacvlanLease)
  .IsCreatedOrUpdated()
  .Watch(lease => scheduleSubnetReconcile(lease.spec?.subnet ?? ""));
When(MacvlanLease)
  .IsDeleted()
  .Watch(lease => scheduleSubnetReconcile(lease.spec?.subnet ?? ""));
When(a.Namespace)
  .IsCreatedOrUpdated()
  .Watch(ns => scheduleSubnetReconcile(ns.metadata?.labels?.[LABEL_SUBNET] ?? ""));
