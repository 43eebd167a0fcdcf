// The operator on the real local cluster: the module built by `npx pepr build`, two admission
// replicas behind the webhook Service and one watcher, Multus and the CNI plugins on each node.
import anyTest, { TestFn } from "ava";
import {
  Cluster,
  Pod,
  podReady,
  sleep,
  testPod,
  waitFor,
  withCluster,
  macvlanSubnet,
  unclaimedLease,
  getJson,
  BUSYBOX_CONTAINER,
} from "./helpers";
import { scaleWatcher } from "../../hack/module/deploy";

const test = anyTest as TestFn;
const cluster = withCluster(test, {
  nodes: 2,
  module: {
    agent: false,
    env: { MACVLAN_RESYNC_SECONDS: "5", MACVLAN_RESERVED_TTL_SECONDS: "8" },
  },
});

const SUBNET = "lan";
const RANGE = { start: "198.18.100.10", end: "198.18.100.200" };

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const subnet = macvlanSubnet;

async function leases(c: Cluster, selector = ""): Promise<Json[]> {
  const out = await c.kubectl(["get", "mvl", "-o", "json", ...(selector ? ["-l", selector] : [])]);
  return JSON.parse(out).items;
}

/** Leases of pods: without those an admission replica holds in its pool (docs/admission.md). */
async function podLeases(c: Cluster): Promise<Json[]> {
  return (await leases(c)).filter(
    l => l.spec.podRef || !l.metadata.annotations?.["macvlan.dev/pool-owner"],
  );
}

const ann = (p: Pod, key: string): string | undefined => p.metadata?.annotations?.[key];

async function optIn(c: Cluster, ns: string, labels: Record<string, string> = {}) {
  await c.createNamespace(ns, { "macvlan.dev/subnet": SUBNET, ...labels });
}

/** Creates a pod and returns kubectl's result: denials come back as a non-zero exit. */
async function createPod(c: Cluster, pod: object) {
  return c.kubectlResult(["create", "-f", "-"], { input: JSON.stringify(pod) });
}

test.before(async () => {
  const c = cluster();
  await c.apply(subnet(SUBNET, { ranges: [RANGE], reuseDelaySeconds: 4 }));
  await waitFor(
    async () => (await getJson(c, ["mvs", SUBNET]))?.status?.conditions?.[0]?.status === "True",
    {
      what: "subnet lan Ready",
    },
  );
});

test.serial(
  "a pod in an opted-in namespace gets a lease, its Multus selection and a working net1",
  async t => {
    const c = cluster();
    await optIn(c, "op-basic");
    await c.apply(testPod({ name: "p1", namespace: "op-basic", node: "pmv-node-1" }));
    const pod = await c.waitForPodReady("op-basic", "p1", { timeoutMs: 60000 });
    const ip = ann(pod, "macvlan.dev/ip")!;
    const mac = ann(pod, "macvlan.dev/mac")!;
    t.regex(ip, /^198\.18\.100\.\d+$/);
    t.regex(mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    const selection = JSON.parse(ann(pod, "k8s.v1.cni.cncf.io/networks")!);
    t.deepEqual(selection, [
      { name: "macvlan-lan", namespace: "op-basic", interface: "net1", ips: [`${ip}/16`], mac },
    ]);
    const net1 = c.networkStatus(pod).find(s => s.interface === "net1");
    t.deepEqual(net1?.ips, [ip]);
    t.is(net1?.mac, mac);
    // The lease is bound to the pod (uid, node) once the watcher sees it.
    const lease = await waitFor(
      async () =>
        (await leases(c, "macvlan.dev/pod-namespace=op-basic")).find(
          l => l.status?.phase === "Bound",
        ),
      { what: "lease Bound" },
    );
    t.is(lease.spec.ip, ip);
    t.is(lease.spec.podRef.uid, pod.metadata!.uid);
    t.is(lease.spec.node, "pmv-node-1");
    t.is(lease.metadata.name, `lan-${ip.replace(/\./g, "-")}`);
    // The managed NAD exists in the namespace with the contract's name and labels.
    const nad = await getJson(c, [
      "-n",
      "op-basic",
      "network-attachment-definitions",
      "macvlan-lan",
    ]);
    t.is(nad?.metadata?.labels?.["app.kubernetes.io/managed-by"], "pepr-macvlan");
    // net1 really carries the address inside the pod.
    const addr = await c.execOk("op-basic/p1", ["ip", "-j", "addr", "show", "net1"]);
    t.true(addr.includes(ip));
    const events = await waitFor(
      async () => {
        const list = await c.events("op-basic", "p1");
        return list.some(e => e.reason === "AddressAllocated") && list;
      },
      { what: "AddressAllocated event" },
    );
    t.truthy(events);
  },
);

test.serial(
  "fixed IPs and IP pools are honoured; refusals say what to fix and leak nothing",
  async t => {
    const c = cluster();
    await optIn(c, "op-fixed");
    await c.apply(
      testPod({
        name: "fixed",
        namespace: "op-fixed",
        annotations: { "macvlan.dev/ip": "198.18.100.150" },
      }),
    );
    const fixed = await c.waitForPodReady("op-fixed", "fixed");
    t.is(ann(fixed, "macvlan.dev/ip"), "198.18.100.150");

    await c.apply(
      testPod({
        name: "pooled",
        namespace: "op-fixed",
        annotations: { "macvlan.dev/ip": "198.18.100.150,198.18.100.151" },
      }),
    );
    t.is(ann(await c.waitForPodReady("op-fixed", "pooled"), "macvlan.dev/ip"), "198.18.100.151");

    const before = (await podLeases(c)).length;
    const taken = await createPod(
      c,
      testPod({
        name: "thief",
        namespace: "op-fixed",
        annotations: { "macvlan.dev/ip": "198.18.100.150" },
      }),
    );
    t.not(taken.code, 0);
    t.regex(taken.stderr, /198\.18\.100\.150.*already taken by pod op-fixed\/fixed/);

    const outside = await createPod(
      c,
      testPod({
        name: "outside",
        namespace: "op-fixed",
        annotations: { "macvlan.dev/ip": "198.18.200.5" },
      }),
    );
    t.not(outside.code, 0);
    t.regex(outside.stderr, /198\.18\.200\.5/);

    const noSubnet = await createPod(
      c,
      testPod({
        name: "nosub",
        namespace: "op-fixed",
        annotations: { "macvlan.dev/subnet": "nope" },
      }),
    );
    t.not(noSubnet.code, 0);
    t.regex(noSubnet.stderr, /MacvlanSubnet "nope".*does not exist/);

    const bypass = await createPod(
      c,
      testPod({
        name: "bypass",
        namespace: "op-fixed",
        networks: [{ name: "macvlan-lan", namespace: "op-fixed", ips: ["198.18.100.160/16"] }],
      }),
    );
    t.not(bypass.code, 0);
    t.regex(bypass.stderr, /names the managed network/);
    await sleep(1500);
    t.is((await podLeases(c)).length, before, "a refused request leases nothing");
  },
);

test.serial(
  "a fixed IP that an admission replica holds unused in its pool is given to the pod that asks",
  async t => {
    const c = cluster();
    // Pools fill from a random start after a subnet's first pods (the tests above made some).
    const pooled = await waitFor(
      async () => {
        const list = (await leases(c, "macvlan.dev/subnet=lan")).filter(
          l => !l.spec.podRef && l.metadata.annotations?.["macvlan.dev/pool-owner"],
        );
        return list.length >= 4 && list;
      },
      { what: "4 pool leases on lan" },
    );
    // Several, so both replicas' pools are asked: each admission reaches one replica or the other.
    const wanted = pooled.slice(0, 4);
    for (const [i, l] of wanted.entries()) {
      const name = `from-pool-${i}`;
      const r = await createPod(
        c,
        testPod({ name, namespace: "op-fixed", annotations: { "macvlan.dev/ip": l.spec.ip } }),
      );
      t.is(r.code, 0, r.stderr);
      const p = await c.waitForPodReady("op-fixed", name);
      t.is(
        ann(p, "macvlan.dev/ip"),
        l.spec.ip,
        `${name} got ${l.spec.ip} (pool of ${l.metadata.annotations["macvlan.dev/pool-owner"]})`,
      );
      const lease = await waitFor(
        async () => {
          const got = (await leases(c)).find(x => x.metadata.name === l.metadata.name);
          return got?.status?.phase === "Bound" && got;
        },
        { what: `lease ${l.metadata.name} Bound to ${name}` },
      );
      t.is(lease.spec.podRef.uid, p.metadata!.uid);
      t.true(lease.spec.fixed);
      t.is(lease.metadata.annotations?.["macvlan.dev/pool-owner"], undefined);
    }
  },
);

test.serial("a namespace the subnet does not allow is refused", async t => {
  const c = cluster();
  await c.apply(
    subnet("restricted", {
      ranges: [{ start: "198.18.101.10", end: "198.18.101.20" }],
      namespaces: ["only-this"],
    }),
  );
  await c.createNamespace("op-denied", { "macvlan.dev/subnet": "restricted" });
  const r = await createPod(c, testPod({ name: "p", namespace: "op-denied" }));
  t.not(r.code, 0);
  t.regex(r.stderr, /namespace "op-denied" may not use MacvlanSubnet "restricted"/);
});

test.serial("an exhausted subnet is refused with its size and how to grow it", async t => {
  const c = cluster();
  await c.apply(subnet("tiny", { ranges: [{ start: "198.18.102.10", end: "198.18.102.11" }] }));
  await c.createNamespace("op-tiny", { "macvlan.dev/subnet": "tiny" });
  t.is((await createPod(c, testPod({ name: "a", namespace: "op-tiny" }))).code, 0);
  t.is((await createPod(c, testPod({ name: "b", namespace: "op-tiny" }))).code, 0);
  const r = await createPod(c, testPod({ name: "c", namespace: "op-tiny" }));
  t.not(r.code, 0);
  t.regex(r.stderr, /tiny/);
  t.regex(r.stderr, /2 usable/);
  t.is((await leases(c, "macvlan.dev/subnet=tiny")).length, 2);
});

test.serial(
  "podDefaultGateway: default route via the LAN gateway on net1, cluster CIDRs via eth0",
  async t => {
    const c = cluster();
    await c.apply(
      subnet("gw", {
        ranges: [{ start: "198.18.103.10", end: "198.18.103.20" }],
        podDefaultGateway: true,
      }),
    );
    await c.createNamespace("op-gw", { "macvlan.dev/subnet": "gw" });
    await c.apply(testPod({ name: "p", namespace: "op-gw" }));
    const pod = await c.waitForPodReady("op-gw", "p");
    t.deepEqual(JSON.parse(ann(pod, "k8s.v1.cni.cncf.io/networks")!)[0]["default-route"], [
      "198.18.0.1",
    ]);
    // Route lookups only (no traffic): egress to the world leaves on net1 via the LAN router,
    // the cluster's pod and service CIDRs stay on eth0.
    const routeVia = async (dst: string) => c.execOk("op-gw/p", ["ip", "route", "get", dst]);
    t.regex(await routeVia("203.0.113.5"), /via 198\.18\.0\.1 dev net1/);
    t.regex(await routeVia("198.19.1.5"), /dev eth0/);
    t.regex(await routeVia("198.19.128.1"), /dev eth0/);
  },
);

test.serial(
  "deleting a pod releases its lease; the address is not reused before the delay",
  async t => {
    const c = cluster();
    await optIn(c, "op-release");
    await c.apply(testPod({ name: "p", namespace: "op-release" }));
    const pod = await c.waitForPodReady("op-release", "p");
    const ip = ann(pod, "macvlan.dev/ip")!;
    const name = `lan-${ip.replace(/\./g, "-")}`;
    await waitFor(async () => (await getJson(c, ["mvl", name]))?.status?.phase === "Bound", {
      what: "bound",
    });
    await c.kubectl(["-n", "op-release", "delete", "pod", "p", "--wait=true"]);
    const released = await waitFor(
      async () => {
        const l = await getJson(c, ["mvl", name]);
        return l?.status?.phase === "Released" && l;
      },
      { what: "lease Released" },
    );
    t.truthy(released.status.releasedAt);
    // While it cools, a fixed request for the address is refused.
    const r = await createPod(
      c,
      testPod({ name: "again", namespace: "op-release", annotations: { "macvlan.dev/ip": ip } }),
    );
    t.not(r.code, 0);
    t.regex(r.stderr, /released at .* cannot be reused before/);
    // After reuseDelaySeconds (4 s) the lease is deleted and the address is free again.
    await waitFor(async () => (await getJson(c, ["mvl", name])) === undefined, {
      what: "lease expired",
      timeoutMs: 30000,
    });
    await c.apply(
      testPod({ name: "again", namespace: "op-release", annotations: { "macvlan.dev/ip": ip } }),
    );
    t.is(ann(await c.waitForPodReady("op-release", "again"), "macvlan.dev/ip"), ip);
  },
);

test.serial(
  "a StatefulSet pod keeps its address across deletion; scaling below it releases it",
  async t => {
    const c = cluster();
    await optIn(c, "op-sts");
    await c.apply({
      apiVersion: "apps/v1",
      kind: "StatefulSet",
      metadata: { name: "db", namespace: "op-sts" },
      spec: {
        replicas: 2,
        serviceName: "db",
        selector: { matchLabels: { app: "db" } },
        template: {
          metadata: { labels: { app: "db" } },
          spec: {
            terminationGracePeriodSeconds: 1,
            containers: [{ name: "db", ...BUSYBOX_CONTAINER, command: ["sleep", "infinity"] }],
          },
        },
      },
    });
    const db1 = await c.waitForPodReady("op-sts", "db-1", { timeoutMs: 90000 });
    const ip1 = ann(db1, "macvlan.dev/ip")!;
    await c.kubectl(["-n", "op-sts", "delete", "pod", "db-1", "--wait=true"]);
    const again = await c.waitForPod(
      "op-sts",
      "db-1",
      p => p.metadata?.uid !== db1.metadata?.uid && podReady(p),
      {
        timeoutMs: 90000,
      },
    );
    t.is(ann(again, "macvlan.dev/ip"), ip1, "same address after the pod came back");
    const name = `lan-${ip1.replace(/\./g, "-")}`;
    await waitFor(
      async () => (await getJson(c, ["mvl", name]))?.spec?.podRef?.uid === again.metadata?.uid,
      {
        what: "lease rebound to the new pod",
      },
    );
    await c.kubectl(["-n", "op-sts", "scale", "sts", "db", "--replicas=1"]);
    await waitFor(
      async () => {
        const l = await getJson(c, ["mvl", name]);
        return !l || l.status?.phase === "Released";
      },
      { what: "lease of ordinal 1 released after scale-down", timeoutMs: 60000 },
    );
    t.pass();
  },
);

test.serial("a restarted watcher repairs what happened while it was down, with Events", async t => {
  const c = cluster();
  await optIn(c, "op-repair");
  await c.apply(testPod({ name: "p", namespace: "op-repair" }));
  const pod = await c.waitForPodReady("op-repair", "p");
  const name = `lan-${ann(pod, "macvlan.dev/ip")!.replace(/\./g, "-")}`;
  await waitFor(async () => (await getJson(c, ["mvl", name]))?.status?.phase === "Bound", {
    what: "bound",
  });
  await scaleWatcher(0);
  await c.kubectl(["-n", "op-repair", "delete", "pod", "p", "--wait=true"]);
  await sleep(1000);
  t.is(
    (await getJson(c, ["mvl", name]))?.status?.phase,
    "Bound",
    "nobody released it while the watcher was down",
  );
  await scaleWatcher(1);
  await waitFor(
    async () => {
      const l = await getJson(c, ["mvl", name]);
      return !l || l.status?.phase === "Released";
    },
    { what: "repair at start", timeoutMs: 60000 },
  );
  const events = JSON.parse(await c.kubectl(["get", "events", "-n", "default", "-o", "json"]))
    .items as Json[];
  t.true(events.some(e => e.reason === "LeaseRepaired" && e.message.includes(name)));
});

test.serial("an unclaimed Reserved lease is reclaimed after its TTL", async t => {
  const c = cluster();
  await c.apply(unclaimedLease(SUBNET, "198.18.100.199"));
  await waitFor(async () => (await getJson(c, ["mvl", "lan-198-18-100-199"])) === undefined, {
    what: "reclaim",
    timeoutMs: 40000,
  });
  t.pass();
});

test.serial(
  "an exposed Service gets a headless twin whose EndpointSlice lists the macvlan IPs",
  async t => {
    const c = cluster();
    await optIn(c, "op-svc");
    await c.apply([
      {
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name: "web", namespace: "op-svc" },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: "web" } },
          template: {
            metadata: { labels: { app: "web" } },
            spec: {
              containers: [
                {
                  name: "web",
                  ...BUSYBOX_CONTAINER,
                  command: ["sleep", "infinity"],
                  ports: [{ name: "http", containerPort: 8080 }],
                },
              ],
            },
          },
        },
      },
      {
        apiVersion: "v1",
        kind: "Service",
        metadata: {
          name: "web",
          namespace: "op-svc",
          annotations: { "macvlan.dev/expose": "true" },
        },
        spec: { selector: { app: "web" }, ports: [{ name: "http", port: 80, targetPort: "http" }] },
      },
    ]);
    const ips = await waitFor(
      async () => {
        const pods = await c.listPods("op-svc", "app=web");
        return (
          pods.length === 2 &&
          pods.every(podReady) &&
          pods.map(p => ann(p, "macvlan.dev/ip")!).sort()
        );
      },
      { what: "web pods ready", timeoutMs: 90000 },
    );
    const slice = await waitFor(
      async () => {
        const s = await getJson(c, ["-n", "op-svc", "endpointslice", "web-macvlan"]);
        const addrs = (s?.endpoints ?? []).map((e: Json) => e.addresses[0]).sort();
        return JSON.stringify(addrs) === JSON.stringify(ips) && s;
      },
      { what: "slice with both macvlan IPs", timeoutMs: 60000 },
    );
    t.is(slice.ports[0].port, 8080);
    const headless = await getJson(c, ["-n", "op-svc", "service", "web-macvlan"]);
    t.is(headless.spec.clusterIP, "None");
    await c.kubectl(["-n", "op-svc", "scale", "deploy", "web", "--replicas=1"]);
    await waitFor(
      async () =>
        (await getJson(c, ["-n", "op-svc", "endpointslice", "web-macvlan"]))?.endpoints?.length ===
        1,
      {
        what: "slice follows scale-down",
        timeoutMs: 60000,
      },
    );
  },
);

test.serial(
  "subnet status counts leases; a subnet with leases waits for them before it goes",
  async t => {
    const c = cluster();
    await c.apply(subnet("gone", { ranges: [{ start: "198.18.104.10", end: "198.18.104.19" }] }));
    await c.createNamespace("op-gone", { "macvlan.dev/subnet": "gone" });
    await c.apply(testPod({ name: "p", namespace: "op-gone" }));
    await c.waitForPodReady("op-gone", "p");
    // Every lease of the subnet counts: the pod's and any an admission replica holds in its pool
    // (docs/admission.md). Status follows the leases that exist.
    const status = await waitFor(
      async () => {
        const s = await getJson(c, ["mvs", "gone"]);
        const held = (await leases(c, "macvlan.dev/subnet=gone")).length;
        return held >= 1 && s?.status?.allocated === held && { ...s.status, held };
      },
      { what: "status allocated = the subnet's leases" },
    );
    t.is(status.total, "10");
    t.is(Number(status.free), 10 - status.held);
    t.true(status.observedGeneration >= 1);
    await c.kubectl(["delete", "mvs", "gone", "--wait=false"]);
    await sleep(3000);
    const terminating = await getJson(c, ["mvs", "gone"]);
    t.truthy(terminating, "the subnet waits for its lease");
    t.regex(terminating.status.conditions[0].message, /waiting for \d+ lease/);
    await c.kubectl(["-n", "op-gone", "delete", "pod", "p", "--wait=true"]);
    await waitFor(async () => (await getJson(c, ["mvs", "gone"])) === undefined, {
      what: "subnet gone",
      timeoutMs: 60000,
    });
    await waitFor(
      async () =>
        (await getJson(c, ["-n", "op-gone", "network-attachment-definitions", "macvlan-gone"])) ===
        undefined,
      {
        what: "NAD removed",
      },
    );
  },
);

test.serial(
  "metrics: allocations, denials, latency and free addresses on Pepr's endpoint",
  async t => {
    const c = cluster();
    const node = c.node(1);
    const podIP = async (component: string) =>
      (await c.listPods("pepr-system", `pepr.dev/controller=${component}`)).find(podReady)!.status
        .podIP as string;
    const admissionIP = await podIP("admission");
    const admission = await c.execOk(`node/${node.name}`, [
      "curl",
      "-sk",
      `https://${admissionIP}:3000/metrics`,
    ]);
    t.regex(admission, /pepr_macvlan_allocations \d+/);
    t.regex(admission, /pepr_macvlan_denials \d+/);
    t.regex(admission, /pepr_macvlan_allocation_latency_ms\{quantile="0.99"\}/);
    // Idle webhook connections outlive the API server's 90 s (capabilities/server-tuning.ts).
    const headers = await c.execOk(`node/${node.name}`, [
      "curl",
      "-sk",
      "-D",
      "-",
      "-o",
      "/dev/null",
      `https://${admissionIP}:3000/healthz`,
    ]);
    t.regex(headers, /keep-alive: timeout=120/i);
    // The watcher counts free addresses per subnet.
    const watcher = await c.execOk(`node/${node.name}`, [
      "curl",
      "-sk",
      `https://${await podIP("watcher")}:3000/metrics`,
    ]);
    t.regex(watcher, /pepr_macvlan_subnet_free_addresses\{subnet="lan"\} \d+/);
  },
);

test.serial(
  "single-NIC: macvlan becomes the pod's only network, with the leased address",
  async t => {
    const c = cluster();
    await optIn(c, "op-single");
    await c.apply(
      testPod({
        name: "vm",
        namespace: "op-single",
        annotations: { "macvlan.dev/single-nic": "true" },
      }),
    );
    const pod = await c.waitForPodReady("op-single", "vm");
    const ip = ann(pod, "macvlan.dev/ip")!;
    t.regex(ip, /^198\.18\.100\.\d+$/);
    t.is(ann(pod, "k8s.v1.cni.cncf.io/networks"), undefined);
    const [selection] = JSON.parse(ann(pod, "v1.multus-cni.io/default-network")!);
    t.is(selection.name, "macvlan-lan");
    const status = c.networkStatus(pod);
    t.is(status.length, 1, "one network only");
    t.deepEqual(status[0].ips, [ip]);
    const links = JSON.parse(await c.execOk("op-single/vm", ["ip", "-j", "addr"])) as Json[];
    const withAddress = links.filter(
      l => l.ifname !== "lo" && l.addr_info?.some((a: Json) => a.family === "inet"),
    );
    t.deepEqual(
      withAddress.map(l => l.addr_info.find((a: Json) => a.family === "inet").local),
      [ip],
    );
  },
);

test.serial("a pod outside opted-in namespaces cannot borrow a managed NAD either", async t => {
  const c = cluster();
  await c.createNamespace("op-outsider");
  const r = await createPod(
    c,
    testPod({
      name: "borrow",
      namespace: "op-outsider",
      networks: [{ name: "macvlan-lan", namespace: "op-basic", ips: ["198.18.100.170/16"] }],
    }),
  );
  t.not(r.code, 0);
  // Outside the opted-in namespaces the API server's policy refuses it (deploy/policies.yaml 5).
  t.regex(r.stderr, /names the managed network macvlan-lan/);
  // Pods there that do not touch macvlan are untouched by the product.
  t.is((await createPod(c, testPod({ name: "plain", namespace: "op-outsider" }))).code, 0);
  const plain = await c.waitForPodReady("op-outsider", "plain");
  t.is(ann(plain, "macvlan.dev/ip"), undefined);
});
