// Bugs the fuzz run (bench/fuzz) found in admission, one test each: every denial must name the
// field the author should fix, and no input may turn a denial into the author's own text.
import test from "ava";
import { a, PeprMutateRequest, PeprValidateRequest } from "pepr";
import { assignAddress, denyFailedAdmission, state } from "../../capabilities/pods/admit";
import { ANN_ADMISSION_ERROR } from "../../capabilities/pods/admit";
import { FakePort } from "./helpers/fake-port";
import { subnet } from "./helpers/objects";
import { isObjectName } from "../../lib/validation/names";

const podWith = (namespace: string, annotations: Record<string, string>): a.Pod => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "fz", namespace, annotations },
  spec: { containers: [{ name: "c", image: "busybox:1.36" }] },
});

const mutate = (pod: a.Pod) =>
  new PeprMutateRequest<a.Pod>({
    operation: "CREATE",
    object: pod,
    namespace: pod.metadata!.namespace,
  } as unknown as ConstructorParameters<typeof PeprMutateRequest<a.Pod>>[0]);

const validate = (pod: a.Pod) =>
  new PeprValidateRequest<a.Pod>({
    operation: "CREATE",
    object: pod,
  } as unknown as ConstructorParameters<typeof PeprValidateRequest<a.Pod>>[0]);

test.before(() => {
  // The admission caches, as the watches would have filled them (no API server here).
  state.namespaces.upsert({ metadata: { name: "plain", labels: {} } });
  state.namespaces.upsert({
    metadata: { name: "team-a", labels: { "macvlan.dev/subnet": "lan" } },
  });
  state.subnets.upsert(subnet("lan"));
  state.ready = async () => true;
});

test.serial(
  "a pod's own macvlan.dev/admission-error is dropped, not turned into its denial",
  async t => {
    const pod = podWith("plain", { [ANN_ADMISSION_ERROR]: "../../etc/passwd" });
    const req = mutate(pod);
    await assignAddress(req, new FakePort());
    t.is(req.Raw.metadata?.annotations?.[ANN_ADMISSION_ERROR], undefined);
    const verdict = denyFailedAdmission(validate(req.Raw));
    t.true(verdict.allowed, "nothing was wrong with the pod");
  },
);

test.serial("a fixed IP that is not an address is denied naming macvlan.dev/ip", async t => {
  const req = mutate(podWith("team-a", { "macvlan.dev/ip": "ᾮṌ" }));
  await assignAddress(req, new FakePort());
  const message = req.Raw.metadata?.annotations?.[ANN_ADMISSION_ERROR] ?? "";
  t.regex(message, /^macvlan\.dev\/ip ᾮṌ: "ᾮṌ" is not a valid IP address/);
});

test("a name no object can have is never a valid object name (the port does not send it)", t => {
  for (const name of ["::/0", "a/b", "..", "%2F", "198.18.0.0/16", "", "A", "x".repeat(254), "١٩٨"])
    t.false(isObjectName(name), name);
  for (const name of ["lan", "fz-lan", "a.b-c", "x".repeat(253)]) t.true(isObjectName(name), name);
});
