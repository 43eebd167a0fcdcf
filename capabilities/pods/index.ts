import { Capability, a } from "pepr";
import { assignAddress, denyFailedAdmission, state } from "./admit";
import { bindPodLease, releasePodLease } from "../leases/lifecycle";
import { refreshServicesFor } from "../services/expose";
import { processRole } from "../../lib/mode";

export const Pods = new Capability({
  name: "macvlan-pods",
  description:
    "Leases a LAN address to each pod of an opted-in namespace and wires it through Multus",
});

const { When } = Pods;

if (processRole() === "admission") void state.start();

When(a.Pod).IsCreated().Mutate(assignAddress).Validate(denyFailedAdmission);
When(a.Pod)
  .IsCreatedOrUpdated()
  .Reconcile(async pod => {
    await bindPodLease(pod);
    await refreshServicesFor(pod);
  });
When(a.Pod)
  .IsDeleted()
  .Reconcile(async pod => {
    await releasePodLease(pod);
    await refreshServicesFor(pod);
  });
