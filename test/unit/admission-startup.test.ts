// Admission before its caches are whole: nothing is taken over or leased on a partial view.
import test from "ava";
import { PeprMutateRequest } from "pepr";
import { AdmissionRequest } from "pepr/dist/lib/common-types";
import { assignAddress, ANN_ADMISSION_ERROR, state } from "../../capabilities/pods/admit";
import { FakePort } from "./helpers/fake-port";
import { lease, pod, subnet } from "./helpers/objects";

test("a StatefulSet pod is not given its ordinal's lease before the lease cache is ready", async t => {
  const port = new FakePort();
  state.namespaces.upsert({
    metadata: { name: "team-a", labels: { "macvlan.dev/subnet": "lan" } },
  });
  state.subnets.upsert(subnet("lan"));
  state.leases.upsert(
    lease({ owner: { name: "db", ordinal: 0 }, uid: "old-uid", phase: "Reserved" }),
  );
  state.ready = async () => false; // the initial list has not arrived
  const raw = pod("db-0", {}, { owner: "db" });
  const req = new PeprMutateRequest({
    uid: "u1",
    kind: { group: "", version: "v1", kind: "Pod" },
    resource: { group: "", version: "v1", resource: "pods" },
    operation: "CREATE",
    namespace: "team-a",
    name: "db-0",
    object: raw,
    userInfo: {},
  } as unknown as AdmissionRequest);
  await assignAddress(req as never, port);
  t.deepEqual(port.writes, [], "no takeover, no create");
  t.regex(req.Raw.metadata?.annotations?.[ANN_ADMISSION_ERROR] ?? "", /starting/);
});
