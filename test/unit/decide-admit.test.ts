// Admission decisions: bypass spellings, opt-in, MAC checks, immutability, sticky takeover.
import test from "ava";
import { planAdmission, podAnnotationsFor, takeoverWrites } from "../../lib/decide/admit";
import { protectedChanges, updateRefusal } from "../../lib/decide/immutable";
import { lease, pod, subnet } from "./helpers/objects";

const subnets = new Map([
  ["lan", subnet("lan")],
  ["other", subnet("other", { cidr: "198.18.101.0/24" })],
]);
const optedIn = { name: "team-a", labels: { "macvlan.dev/subnet": "lan" } };
const plain = { name: "plain", labels: {} };

const admit = (annotations: Record<string, string>, namespace = "plain", info = plain) =>
  planAdmission({
    pod: pod("p", annotations, { namespace }),
    namespace,
    namespaceInfo: info,
    subnets,
  });

const BYPASSES: [string, Record<string, string>][] = [
  ["the plain name", { "k8s.v1.cni.cncf.io/networks": "macvlan-lan" }],
  ["another namespace's NAD", { "k8s.v1.cni.cncf.io/networks": "team-a/macvlan-lan" }],
  [
    "spaces around the name and interface",
    { "k8s.v1.cni.cncf.io/networks": "team-a/macvlan-lan @net1" },
  ],
  ["a space after the slash", { "k8s.v1.cni.cncf.io/networks": "team-a/ macvlan-lan" }],
  ["second in a list", { "k8s.v1.cni.cncf.io/networks": "other-net, macvlan-lan" }],
  [
    "an upper-case JSON key",
    { "k8s.v1.cni.cncf.io/networks": '[{"NAME":"macvlan-lan","namespace":"team-a"}]' },
  ],
  [
    "a decoy name before a second Name key",
    {
      "k8s.v1.cni.cncf.io/networks":
        '[{"name":"decoy","Name":"macvlan-lan","ips":["198.18.100.1/24"]}]',
    },
  ],
  ["an escaped key", { "k8s.v1.cni.cncf.io/networks": '[{"\\u006eame":"macvlan-lan"}]' }],
  ["the default-network annotation", { "v1.multus-cni.io/default-network": "team-a/macvlan-lan" }],
  [
    "the default-network annotation as a JSON list",
    { "v1.multus-cni.io/default-network": '[{"name":"macvlan-lan","namespace":"team-a"}]' },
  ],
];

for (const [what, annotations] of BYPASSES) {
  test(`a pod naming the managed NAD is denied: ${what}`, t => {
    for (const [namespace, info] of [
      ["plain", plain],
      ["team-a", optedIn],
    ] as const) {
      const plan = admit(annotations, namespace, info);
      t.is(plan.kind, "deny", `${namespace}: ${JSON.stringify(plan)}`);
      if (plan.kind === "deny") t.regex(plan.message, /managed network/);
    }
  });
}

test("an unreadable Multus annotation that mentions a managed NAD is denied, others are not judged", t => {
  t.is(admit({ "k8s.v1.cni.cncf.io/networks": '[{"name": "macvlan-lan"' }).kind, "deny");
  t.is(admit({ "k8s.v1.cni.cncf.io/networks": '[{"name": "flannel"' }).kind, "skip");
});

test("other networks are not ours to judge, and pods that did not opt in are left alone", t => {
  t.is(admit({ "k8s.v1.cni.cncf.io/networks": "team-a/sriov-net@net2" }).kind, "skip");
  t.is(admit({}).kind, "skip");
});

test("an opted-in pod gets a lease plan; a subnet the namespace may not use is denied", t => {
  const plan = admit({}, "team-a", optedIn);
  t.is(plan.kind, "lease");
  const locked = new Map([["lan", subnet("lan", { namespaces: ["team-b"] })]]);
  const denied = planAdmission({
    pod: pod("p"),
    namespace: "team-a",
    namespaceInfo: optedIn,
    subnets: locked,
  });
  t.is(denied.kind, "deny");
  if (denied.kind === "deny") t.regex(denied.message, /may not use MacvlanSubnet "lan"/);
});

test("a fixed MAC must be unicast: multicast and broadcast MACs are denied", t => {
  for (const mac of ["01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00", "not-a-mac"]) {
    const plan = admit({ "macvlan.dev/mac": mac }, "team-a", optedIn);
    t.is(plan.kind, "deny", mac);
  }
  const ok = admit({ "macvlan.dev/mac": "02:AA:bb:00:00:01" }, "team-a", optedIn);
  t.is(ok.kind === "lease" ? ok.mac : ok.kind, "02:aa:bb:00:00:01");
});

test("admission writes the reservation token with the selection; the user's other networks stay", t => {
  const plan = admit({}, "team-a", optedIn);
  if (plan.kind !== "lease") return t.fail(plan.kind);
  const held = lease({ token: "tok" });
  const out = podAnnotationsFor(plan, held, "team-a", "team-a/sriov@net2");
  t.is(out["macvlan.dev/reservation"], "tok");
  const selections = JSON.parse(out["k8s.v1.cni.cncf.io/networks"]);
  t.deepEqual(
    selections.map((s: { name: string }) => s.name),
    ["macvlan-lan", "sriov"],
  );
  t.deepEqual(selections[0].ips, ["198.18.100.10/24"]);
});

test("a Pod UPDATE may not change what admission wrote, nor add Multus annotations", t => {
  const before = { "macvlan.dev/subnet": "lan", "macvlan.dev/ip": "198.18.100.10", team: "x" };
  t.deepEqual(protectedChanges(before, { ...before, "macvlan.dev/ip": "198.18.100.99" }), [
    "macvlan.dev/ip",
  ]);
  t.deepEqual(protectedChanges(before, { ...before, "macvlan.dev/subnet": "other" }), [
    "macvlan.dev/subnet",
  ]);
  t.deepEqual(protectedChanges({}, { "k8s.v1.cni.cncf.io/networks": "macvlan-lan" }), [
    "k8s.v1.cni.cncf.io/networks",
  ]);
  t.deepEqual(protectedChanges(before, { team: "x" }), ["macvlan.dev/ip", "macvlan.dev/subnet"]);
  t.is(updateRefusal(before, { ...before, team: "y" }), undefined);
  t.regex(updateRefusal(before, {})!, /cannot change after admission/);
});

test("the sticky takeover is a compare-and-swap on the lease, only on the same subnet", t => {
  const owner = { kind: "StatefulSet" as const, namespace: "team-a", name: "db", ordinal: 0 };
  const held = lease({ owner: { name: "db", ordinal: 0 }, rv: "7" });
  const [write] = takeoverWrites(held, owner, "lan", "db-0", "tok");
  t.is(write.op, "patchLease");
  if (write.op === "patchLease") {
    t.is(write.lease.resourceVersion, "7");
    t.is(write.lease.uid, held.metadata!.uid);
    t.is(write.annotations?.["macvlan.dev/reservation"], "tok");
  }
  t.deepEqual(takeoverWrites(held, owner, "other", "db-0", "tok"), []);
  t.deepEqual(
    takeoverWrites(
      lease({ owner: { name: "db", ordinal: 0 }, phase: "Released" }),
      owner,
      "lan",
      "db-0",
      "t",
    ),
    [],
  );
});
