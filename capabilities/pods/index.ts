import { Capability, a } from "pepr";
import { assignAddress, denyFailedAdmission, denyProtectedChange, pool, state } from "./admit";
import { bindPodLease, releasePodLease } from "../leases/lifecycle";
import { refreshServicesFor } from "../services/expose";
import { processRole } from "../../lib/mode";
import { ADMISSION_BUDGET_MS, withDeadline } from "../../lib/k8s/retry";

export const Pods = new Capability({
  name: "macvlan-pods",
  description:
    "Leases a LAN address to each pod of an opted-in namespace and wires it through Multus",
});

const { When } = Pods;

if (processRole() === "admission") {
  void state.start();
  void pool.start(); // pre-leased addresses, when this process runs as a pod (./pool.ts)
}

// CREATE: lease and write the Multus selection; deny with the reason mutation recorded. All of
// its API calls (and their retries) end inside the webhook timeout (lib/k8s/retry.ts).
When(a.Pod)
  .IsCreated()
  .Mutate(req => withDeadline(ADMISSION_BUDGET_MS, () => assignAddress(req)))
  .Validate(denyFailedAdmission);
// UPDATE: what admission wrote stays as it wrote it.
When(a.Pod).IsUpdated().Validate(denyProtectedChange);
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
