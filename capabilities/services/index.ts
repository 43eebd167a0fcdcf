import { Capability, a } from "pepr";
import { reconcileService } from "./expose";

export const Services = new Capability({
  name: "macvlan-services",
  description:
    "Publishes the macvlan addresses of exposed Services as headless <svc>-macvlan Services",
});

const { When } = Services;

When(a.Service).IsCreatedOrUpdated().Reconcile(reconcileService);
