// Tenancy rules on the real local cluster, as a hostile tenant would try them (then the blast
// radius tests of ./blast-radius.ts on the same cluster): every spelling of
// a managed NAD Multus accepts, annotation edits after admission, an EndpointSlice spoof, a
// poisoned pod the webhook never saw while the resync keeps repairing, and a NAD deleted or
// rewritten by hand.
import anyTest, { TestFn } from "ava";
import {
  Cluster,
  podReady,
  testPod,
  unclaimedLease,
  waitFor,
  withCluster,
  macvlanSubnet,
  getJson,
} from "./helpers";
import { blastRadiusTests } from "./blast-radius";
import { POLICIES } from "../../hack/module/policies";

const test = anyTest as TestFn;
const cluster = withCluster(test, {
  nodes: 2,
  module: {
    agent: false,
    env: { MACVLAN_RESYNC_SECONDS: "5", MACVLAN_RESERVED_TTL_SECONDS: "8" },
  },
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

/**
 * Runs `create` while the API server does not enforce deploy/policies.yaml's opt-in policy (its
 * binding deleted, then applied again): how a pod with forged macvlan.dev/* annotations exists
 * outside the opted-in namespaces at all (created before the policies were installed, or while an
 * admin had removed them). The module must still not trust it.
 */
async function withoutOptInPolicy(c: Cluster, create: () => Promise<unknown>): Promise<void> {
  const binding = ["validatingadmissionpolicybinding", "pepr-macvlan-opt-in-required"];
  await c.kubectl(["delete", ...binding]);
  try {
    // The API server drops the binding from its policy cache a moment after the delete.
    await waitFor(
      async () =>
        (await create()
          .then(() => true)
          .catch(() => false)) as boolean,
      {
        what: "the create accepted without the opt-in policy",
        timeoutMs: 30000,
      },
    );
  } finally {
    await c.kubectl(["apply", "-f", POLICIES]);
  }
}

const createPod = (c: Cluster, pod: object) =>
  c.kubectlResult(["create", "-f", "-"], { input: JSON.stringify(pod) });

test.before(async () => {
  const c = cluster();
  await c.apply(
    macvlanSubnet("lan", { ranges: [{ start: "198.18.100.10", end: "198.18.100.100" }] }),
  );
  await c.apply(
    macvlanSubnet("private", {
      ranges: [{ start: "198.18.101.10", end: "198.18.101.100" }],
      namespaces: ["tn-owner"],
    }),
  );
  await c.createNamespace("tn-a", { "macvlan.dev/subnet": "lan" });
  await c.createNamespace("tn-owner", { "macvlan.dev/subnet": "private" });
  await c.createNamespace("tn-outsider");
  await waitFor(
    async () => (await getJson(c, ["mvs", "lan"]))?.status?.conditions?.[0]?.status === "True",
    {
      what: "subnet lan Ready",
    },
  );
});

const SPELLINGS: [string, Record<string, string>][] = [
  ["shorthand with spaces", { "k8s.v1.cni.cncf.io/networks": "tn-a/ macvlan-lan @net1" }],
  [
    "upper-case JSON key",
    {
      "k8s.v1.cni.cncf.io/networks":
        '[{"NAME":"macvlan-lan","namespace":"tn-a","ips":["198.18.100.150/16"]}]',
    },
  ],
  [
    "decoy name, then Name",
    {
      "k8s.v1.cni.cncf.io/networks":
        '[{"name":"x","Name":"macvlan-lan","namespace":"tn-a","ips":["198.18.100.151/16"]}]',
    },
  ],
  ["default network, shorthand", { "v1.multus-cni.io/default-network": "tn-a/macvlan-lan" }],
  [
    "default network, JSON list",
    { "v1.multus-cni.io/default-network": '[{"name":"macvlan-lan","namespace":"tn-a"}]' },
  ],
];

test.serial(
  "every spelling of a managed NAD Multus accepts is denied, opted in or not",
  async t => {
    const c = cluster();
    for (const ns of ["tn-outsider", "tn-a"]) {
      for (const [what, annotations] of SPELLINGS) {
        const r = await createPod(c, testPod({ name: "bypass", namespace: ns, annotations }));
        t.not(r.code, 0, `${ns}: ${what} was admitted`);
        t.regex(r.stderr, /managed network/, `${ns}: ${what}`);
      }
    }
    t.is(
      (await getJson(c, ["mvl"]))?.items.filter(
        (l: Json) => /^198\.18\.100\./.test(l.spec.ip) && Number(l.spec.ip.split(".")[3]) >= 150,
      ).length,
      0,
      "no lease for any address a bypass asked for",
    );
  },
);

test.serial(
  "annotations admission wrote cannot be edited afterwards; no lease follows an edit",
  async t => {
    const c = cluster();
    await c.apply(testPod({ name: "mine", namespace: "tn-a" }));
    const pod = await c.waitForPodReady("tn-a", "mine", { timeoutMs: 60000 });
    const ip = pod.metadata!.annotations!["macvlan.dev/ip"];
    const edits: string[][] = [
      ["macvlan.dev/subnet=private", "macvlan.dev/ip=198.18.101.50"],
      ["macvlan.dev/ip=198.18.100.99"],
      ["k8s.v1.cni.cncf.io/networks=tn-a/macvlan-lan"],
      ["macvlan.dev/reservation-"],
    ];
    for (const edit of edits) {
      const r = await c.kubectlResult([
        "-n",
        "tn-a",
        "annotate",
        "pod",
        "mine",
        "--overwrite",
        ...edit,
      ]);
      t.not(r.code, 0, `edit ${edit.join(" ")} was admitted`);
      t.regex(r.stderr, /cannot change after admission/);
    }
    const unrelated = await c.kubectlResult(["-n", "tn-a", "annotate", "pod", "mine", "team=x"]);
    t.is(unrelated.code, 0, "other annotations stay editable");
    const leases = (await getJson(c, ["mvl"]))!.items as Json[];
    t.false(
      leases.some(l => l.spec.subnet === "private"),
      "no lease in the other tenant's subnet",
    );
    t.true(leases.some(l => l.spec.ip === ip && l.spec.podRef?.uid === pod.metadata!.uid));
  },
);

test.serial(
  "an EndpointSlice lists Bound leases only: a pod's own macvlan.dev/ip is not published",
  async t => {
    const c = cluster();
    const owner = await (async () => {
      await c.apply(testPod({ name: "real", namespace: "tn-owner", labels: { app: "spoof" } }));
      return c.waitForPodReady("tn-owner", "real", { timeoutMs: 60000 });
    })();
    const victimIp = owner.metadata!.annotations!["macvlan.dev/ip"];
    // A pod that did not opt in, claiming the other tenant's address by annotation at creation:
    // refused by the API server's policy; created anyway without it, it must not be published.
    const liar = testPod({
      name: "liar",
      namespace: "tn-outsider",
      labels: { app: "spoof" },
      annotations: { "macvlan.dev/ip": victimIp },
    });
    const refused = await createPod(c, liar);
    t.not(refused.code, 0);
    t.regex(refused.stderr, /has not opted in to pepr-macvlan/);
    await withoutOptInPolicy(c, () => c.apply(liar));
    await c.waitForPodReady("tn-outsider", "liar", { timeoutMs: 60000 });
    await c.apply({
      apiVersion: "v1",
      kind: "Service",
      metadata: {
        name: "spoof",
        namespace: "tn-outsider",
        annotations: { "macvlan.dev/expose": "true" },
      },
      spec: { selector: { app: "spoof" }, ports: [{ port: 80 }] },
    });
    const slice = await waitFor(
      async () => getJson(c, ["-n", "tn-outsider", "endpointslice", "spoof-macvlan"]),
      {
        what: "the twin's EndpointSlice",
        timeoutMs: 30000,
      },
    );
    t.deepEqual(slice.endpoints ?? [], [], "the claimed address is not published");
    t.true(podReady(owner));
  },
);

test.serial(
  "a poisoned pod the webhook never saw is reported, and the resync still repairs",
  async t => {
    const c = cluster();
    await withoutOptInPolicy(c, () =>
      c.apply(
        testPod({
          name: "poison",
          namespace: "kube-public",
          annotations: { "macvlan.dev/subnet": "lan", "macvlan.dev/ip": "198.18.100.999" },
        }),
      ),
    );
    // A Reserved lease nobody claims: the resync must still reclaim it after its TTL.
    await c.apply(unclaimedLease("lan", "198.18.100.98", "02:00:00:00:00:98"));
    await waitFor(async () => (await getJson(c, ["mvl", "lan-198-18-100-98"])) === undefined, {
      what: "the unclaimed lease reclaimed while the poisoned pod exists",
      timeoutMs: 60000,
    });
    const events = await waitFor(
      async () => {
        const list = JSON.parse(
          await c.kubectl(["get", "events", "-n", "kube-public", "-o", "json"]),
        ).items as Json[];
        return list.find(e => e.reason === "MalformedObject" && e.involvedObject.name === "poison");
      },
      { what: "a Warning Event naming the poisoned pod", timeoutMs: 30000 },
    );
    t.is(events.type, "Warning");
    await c.kubectl(["-n", "kube-public", "delete", "pod", "poison", "--wait=false"]);
  },
);

test.serial("a managed NAD deleted or rewritten by hand is put back", async t => {
  const c = cluster();
  const nad = ["-n", "tn-a", "network-attachment-definitions", "macvlan-lan"];
  const original = await waitFor(async () => getJson(c, nad), { what: "the managed NAD" });
  await c.kubectl(["delete", ...nad.slice(0, 2), nad[2], nad[3]]);
  const back = await waitFor(async () => getJson(c, nad), {
    what: "the NAD re-applied",
    timeoutMs: 30000,
  });
  t.is(back.spec.config, original.spec.config);
  // The macvlan plugin of the list pointed at other IPAM: addresses no lease protects.
  const list = JSON.parse(original.spec.config);
  const forged = JSON.stringify({
    ...list,
    plugins: [
      { ...list.plugins[0], ipam: { type: "host-local", subnet: "198.18.100.0/24" } },
      ...list.plugins.slice(1),
    ],
  });
  await c
    .kubectl([
      "patch",
      ...nad.slice(0, 2),
      nad[2],
      nad[3],
      "--type=merge",
      "-p",
      JSON.stringify({ spec: { config: forged } }),
    ])
    .catch(() => "");
  await waitFor(async () => (await getJson(c, nad))?.spec?.config === original.spec.config, {
    what: "the NAD's config restored",
    timeoutMs: 30000,
  });
  t.pass();
});

// The blast radius and availability tests (test/integration/blast-radius.ts) run on this cluster
// after the tenancy tests: they scale the admission Deployment and restart it.
blastRadiusTests(test, cluster);
