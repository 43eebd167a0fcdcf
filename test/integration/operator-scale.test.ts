// Concurrency: 300 pods created at once through several Deployments, admitted by two replicas
// that share nothing but the apiserver. Every address must be unique, every lease bound to
// exactly one live pod, and nothing may be left over once the pods are gone.
import anyTest, { TestFn } from "ava";
import { testDeployment, waitFor, withCluster, macvlanSubnet } from "./helpers";

const test = anyTest as TestFn;
const cluster = withCluster(test, {
  nodes: 2,
  // A pool lease its replica lost track of is revoked at 2 min (default 10) and reclaimed a TTL
  // later: within the wait for "no lease left over" below.
  module: {
    agent: false,
    env: { MACVLAN_RESYNC_SECONDS: "10", MACVLAN_POOL_MAX_AGE_SECONDS: "120" },
  },
});

const DEPLOYMENTS = 3;
const REPLICAS = 100;
const NS = "scale";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

/** A lease an admission replica pre-leased and has not handed to a pod yet. */
const isPoolLease = (l: Json) =>
  !l.spec.podRef && !!l.metadata.annotations?.["macvlan.dev/pool-owner"];

test.before(async () => {
  const c = cluster();
  await c.apply(
    macvlanSubnet("bulk", {
      ranges: [{ start: "198.18.110.1", end: "198.18.111.254" }],
      reuseDelaySeconds: 2,
    }),
  );
  await c.createNamespace(NS, { "macvlan.dev/subnet": "bulk" });
});

test.serial(
  `${DEPLOYMENTS * REPLICAS} pods at once from two admission replicas get distinct, bound addresses`,
  async t => {
    // Four phases of up to minutes each on 2 cores (Running took 317 s on real kubelets): more
    // than ava's 10-minute silence limit, which t.timeout replaces for this test.
    t.timeout(25 * 60_000);
    const c = cluster();
    const total = DEPLOYMENTS * REPLICAS;
    const started = Date.now();
    const since = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
    await c.apply(
      Array.from({ length: DEPLOYMENTS }, (_, i) =>
        testDeployment({ namespace: NS, name: `d${i}`, replicas: REPLICAS }),
      ),
    );

    const pods = await waitFor(
      async () => {
        const list = JSON.parse(await c.kubectl(["-n", NS, "get", "pods", "-o", "json"]))
          .items as Json[];
        const running = list.filter(p => p.status?.phase === "Running");
        return running.length === total && list.length === total && list;
      },
      { what: `${total} pods Running`, timeoutMs: 600_000, intervalMs: 2000 },
    );
    t.log(`${total} pods Running after ${since()}`);
    const ips = pods.map(p => p.metadata.annotations["macvlan.dev/ip"]);
    t.is(new Set(ips).size, total, "every pod has its own address");
    t.true(ips.every(ip => /^198\.18\.11[01]\.\d+$/.test(ip)));
    const nodes = new Set(pods.map(p => p.spec.nodeName));
    t.is(nodes.size, 2, "pods run on both nodes");
    // Each pod's net1 really carries its address (Multus reported it).
    for (const p of pods) {
      const status = JSON.parse(
        p.metadata.annotations["k8s.v1.cni.cncf.io/network-status"] ?? "[]",
      );
      t.true(
        status.some(
          (s: Json) =>
            s.interface === "net1" && s.ips?.[0] === p.metadata.annotations["macvlan.dev/ip"],
        ),
        `network-status of ${p.metadata.name}`,
      );
    }

    const uids = new Map(pods.map(p => [p.metadata.uid, p]));
    const leases = await waitFor(
      async () => {
        const list = JSON.parse(
          await c.kubectl(["get", "mvl", "-l", "macvlan.dev/subnet=bulk", "-o", "json"]),
        ).items as Json[];
        // Bound once the watcher saw the pod; the node follows when it saw the pod scheduled.
        // Leases an admission replica still holds in its pool (docs/admission.md) are not a pod's.
        const forPods = list.filter(l => !isPoolLease(l));
        const settled = (l: Json) =>
          l.status?.phase === "Bound" &&
          l.spec.node === uids.get(l.spec.podRef?.uid)?.spec.nodeName;
        return forPods.length === total && forPods.every(settled) && forPods;
      },
      { what: "all leases Bound with their pod's node", timeoutMs: 180_000, intervalMs: 2000 },
    );
    t.log(`every lease Bound with its pod's node after ${since()}`);
    t.log(await c.restartReasons());
    const boundUids = leases.map((l: Json) => l.spec.podRef.uid);
    t.is(new Set(boundUids).size, total, "no pod holds two leases");
    for (const l of leases) {
      const pod = uids.get(l.spec.podRef.uid);
      t.truthy(pod, `lease ${l.metadata.name} is bound to a live pod`);
      t.is(pod?.metadata.annotations["macvlan.dev/ip"], l.spec.ip);
      t.is(pod?.spec.nodeName, l.spec.node);
    }

    await c.kubectl(["-n", NS, "delete", "deployments", "--all", "--wait=false"]);
    await waitFor(
      async () =>
        JSON.parse(await c.kubectl(["-n", NS, "get", "pods", "-o", "json"])).items.length === 0,
      { what: "pods gone", timeoutMs: 600_000, intervalMs: 2000 },
    );
    t.log(`pods deleted after ${since()}`);
    await waitFor(
      async () =>
        JSON.parse(await c.kubectl(["get", "mvl", "-l", "macvlan.dev/subnet=bulk", "-o", "json"]))
          .items.length === 0,
      // The pods' leases are released at once; pool leases go once the replicas are idle (60 s).
      { what: "no lease left over", timeoutMs: 240_000, intervalMs: 2000 },
    );
    t.log(`no lease left after ${since()}`);
    t.pass();
  },
);
