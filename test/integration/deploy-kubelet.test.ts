// The module installed exactly as a user installs it (README "Install on a real cluster"), on the
// local cluster with real kubelets and containerd: `kubectl apply -f crds/`, `npx pepr deploy --yes`
// (admission Deployment and watcher from the Pepr controller image, the module in a Secret), and
// agent/deploy/agent.yaml unchanged (the agent's image). No process of the module runs outside a pod.
import test from "ava";
import { procRssKiB, run } from "../../hack/cluster/proc";
import { controllerImageRef, agentImageRef } from "../../hack/kubelet/images";
import {
  ADMISSION,
  NAMESPACE,
  applyAgent,
  applyCrds,
  peprDeploy,
  waitForAgent,
  waitForModule,
} from "../../hack/module/deploy";
import {
  Pod,
  httpServer,
  podReady,
  sleep,
  testPod,
  waitFor,
  withCluster,
  macvlanSubnet,
  getJson,
} from "./helpers";

// On failure: what the module's pods did (declared before withCluster: it needs the cluster).
test.afterEach.always(async t => {
  if (t.passed) return;
  const logs = ["logs", "--all-containers", "--prefix", "--tail=40", "-l", "pepr.dev/controller"];
  const report = await cluster().kubectlReport(
    [
      ["get", "pods", "-A", "-o", "wide"],
      ["-n", NAMESPACE, "describe", "pods"],
      ["-n", NAMESPACE, ...logs],
      ["get", "events", "-A", "--sort-by=.lastTimestamp"],
    ],
    80,
  );
  t.log(report);
});
const cluster = withCluster(test, { nodes: 2 });

const SUBNET = "lan";
const NS = "deploy-team";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const ann = (p: Pod, key: string): string | undefined => p.metadata?.annotations?.[key];

/** Resident memory (MiB) of the processes whose command line contains `needle`. */
function rssMiB(needle: string): { pids: number[]; mib: number } {
  const pids = run("pgrep", ["-f", needle]).stdout.split("\n").filter(Boolean).map(Number);
  return { pids, mib: pids.reduce((s, p) => s + procRssKiB(p), 0) / 1024 };
}

let deployStart = 0;

test.serial(
  "npx pepr deploy: two admission pods and the watcher run from the controller image",
  async t => {
    const c = cluster();
    deployStart = Date.now();
    await applyCrds();
    const d = await peprDeploy({ timeoutMs: 240_000 });
    const m = await waitForModule(120_000);
    const total = (Date.now() - deployStart) / 1000;
    t.log(
      `pepr deploy returned after ${d.seconds.toFixed(1)} s (build included); ` +
        `admission + watcher Ready, endpoints filled ${total.toFixed(1)} s after the start`,
    );

    const nodes = new Set<string>();
    for (const p of [...m.admission, ...m.watcher]) {
      const ctr = p.spec.containers[0];
      t.is(ctr.image, controllerImageRef());
      t.is(ctr.imagePullPolicy, "IfNotPresent");
      t.is(ctr.args[0], "/app/node_modules/pepr/dist/controller.js");
      t.regex(ctr.args[1], /^[0-9a-f]{64}$/);
      t.is(p.spec.securityContext.runAsUser, 65532);
      t.is(ctr.readinessProbe.httpGet.port, 3000);
      // Logged, not asserted: on a busy machine the liveness probe (10 s delay) may restart one once.
      const restarts = p.status.containerStatuses[0].restartCount;
      if (restarts) t.log(`${p.metadata.name} restarted ${restarts} time(s)`);
      t.true(podReady(p));
      nodes.add(p.spec.nodeName);
    }
    t.log(
      `pods: ${[...m.admission, ...m.watcher].map(p => `${p.metadata.name} ${p.spec.nodeName} ${p.status.podIP}`).join("; ")}`,
    );
    // The module Secret holds the module under the hash the Deployments name.
    const secret = await getJson(c, ["-n", NAMESPACE, "secret", `${ADMISSION}-module`]);
    t.deepEqual(Object.keys(secret.data), [
      `module-${m.admission[0].spec.containers[0].args[1]}.js.gz`,
    ]);
    // The Pepr store CRD exists (applied by pepr deploy and again by each controller at start),
    // and the module created its store.
    const crd = await getJson(c, ["crd", "peprstores.pepr.dev"]);
    t.truthy(
      crd?.status?.conditions?.find((x: Json) => x.type === "Established" && x.status === "True"),
    );
    const store = await waitFor(
      () => getJson(c, ["-n", NAMESPACE, "peprstore", `${ADMISSION}-store`]),
      {
        what: "the module's PeprStore",
        timeoutMs: 30000,
      },
    );
    t.truthy(store);
    // The webhook Service selects the admission pods; its endpoints are their pod IPs.
    const svc = await getJson(c, ["-n", NAMESPACE, "service", ADMISSION]);
    t.deepEqual(svc.spec.selector, { app: ADMISSION, "pepr.dev/controller": "admission" });
    const eps = await getJson(c, ["-n", NAMESPACE, "endpoints", ADMISSION]);
    t.deepEqual(
      eps.subsets[0].addresses.map((a: Json) => a.ip).sort(),
      m.admission.map(p => p.status.podIP).sort(),
    );
    const ctl = rssMiB("/app/node_modules/pepr/dist/controller.js");
    const mod = rssMiB("/app/module-");
    t.log(
      `memory: ${ctl.pids.length} controller.js processes ${ctl.mib.toFixed(0)} MiB RSS, ` +
        `${mod.pids.length} forked module processes ${mod.mib.toFixed(0)} MiB RSS`,
    );
    t.is(mod.pids.length, 3);
  },
);

test.serial(
  "a busybox pod in an opted-in namespace gets a lease, net1 with that address, and the lease is Bound",
  async t => {
    const c = cluster();
    await c.apply(
      macvlanSubnet(SUBNET, {
        ranges: [{ start: "198.18.100.10", end: "198.18.100.200" }],
        reuseDelaySeconds: 4,
      }),
    );
    await waitFor(
      async () => (await getJson(c, ["mvs", SUBNET]))?.status?.conditions?.[0]?.status === "True",
      { what: "subnet lan Ready (watcher reconciled it)", timeoutMs: 60000 },
    );
    await c.createNamespace(NS, { "macvlan.dev/subnet": SUBNET });
    const t0 = Date.now();
    await c.apply(testPod({ name: "bb", namespace: NS, node: "pmv-node-2" }));
    const pod = await c.waitForPodReady(NS, "bb", { timeoutMs: 90000 });
    t.log(`busybox pod Ready ${((Date.now() - t0) / 1000).toFixed(1)} s after kubectl apply`);
    t.is(pod.status.containerStatuses[0].image, "docker.io/library/busybox:1.36");
    const ip = ann(pod, "macvlan.dev/ip")!;
    t.regex(ip, /^198\.18\.100\.\d+$/);
    const selection = JSON.parse(ann(pod, "k8s.v1.cni.cncf.io/networks")!);
    t.like(selection[0], {
      name: `macvlan-${SUBNET}`,
      namespace: NS,
      interface: "net1",
      ips: [`${ip}/16`],
    });
    const net1 = c.networkStatus(pod).find(s => s.interface === "net1");
    t.deepEqual(net1?.ips, [ip]);
    const addr = await c.execOk(`${NS}/bb`, ["ip", "-br", "-4", "addr", "show", "dev", "net1"]);
    t.true(addr.includes(`${ip}/16`), addr);
    const lease = await waitFor(
      async () => {
        const l = await getJson(c, ["mvl", `${SUBNET}-${ip.replace(/\./g, "-")}`]);
        return l?.status?.phase === "Bound" && l;
      },
      { what: "lease Bound", timeoutMs: 30000 },
    );
    t.is(lease.spec.podRef.uid, pod.metadata.uid);
    t.is(lease.spec.node, "pmv-node-2");
    // Another node reaches the pod over the LAN.
    t.true(await c.ping("node/pmv-node-1", ip));
  },
);

test.serial(
  "single-NIC pod: its readiness probe on the macvlan pod IP fails until the agent adds the shim route",
  async t => {
    const c = cluster();
    const probe = { httpGet: { port: 8080, path: "/" }, periodSeconds: 1, failureThreshold: 1 };
    await c.apply(
      testPod({
        name: "vm",
        namespace: NS,
        node: "pmv-node-1",
        command: httpServer(8080),
        annotations: { "macvlan.dev/single-nic": "true" },
        readinessProbe: probe,
      }),
    );
    const pod = await c.waitForPod(
      NS,
      "vm",
      p => !!p.status?.podIP && p.status?.containerStatuses?.[0]?.state?.running,
      { timeoutMs: 90000 },
    );
    const ip = ann(pod, "macvlan.dev/ip")!;
    t.is(pod.status.podIP, ip, "the pod IP is the macvlan address");
    t.is(c.networkStatus(pod).length, 1);
    // The kubelet (node 1's network namespace) cannot reach a macvlan child of its own eth0.
    await sleep(5000);
    const before = (await c.getPod(NS, "vm"))!;
    t.false(podReady(before), "not Ready without the agent");
    t.false(await c.ping("node/pmv-node-1", ip), "node 1 → its own macvlan pod fails");
    const unhealthy = await waitFor(
      async () => (await c.events(NS, "vm")).find(e => e.reason === "Unhealthy"),
      { what: "a failed readiness probe recorded (Event Unhealthy)", timeoutMs: 15000 },
    );
    t.log(`before the agent: ${unhealthy.message}`);
    // The node's own process serves fine: the pod is up, only the path from the node is missing.
    t.true(await c.ping("node/pmv-node-2", ip), "node 2 reaches it over the LAN");

    const t0 = Date.now();
    await applyAgent();
    const agents = await waitForAgent(120_000);
    t.deepEqual(agents.map(p => p.spec.nodeName).sort(), ["pmv-node-1", "pmv-node-2"]);
    for (const p of agents) t.is(p.spec.containers[0].image, agentImageRef());
    const readyPod = await c.waitForPodReady(NS, "vm", { timeoutMs: 60000 });
    t.log(
      `agent applied → agents Ready and the single-NIC pod Ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
    t.true(podReady(readyPod));
    const routes = await c.execOk("node/pmv-node-1", ["ip", "-4", "route", "show", "proto", "77"]);
    t.regex(
      routes,
      new RegExp(
        `^${ip.replace(/\./g, "\\.")} dev mvshim-[0-9a-f]{8} .*src 198\\.18\\.0\\.11`,
        "m",
      ),
    );
    t.true(await c.ping("node/pmv-node-1", ip), "node 1 → its own macvlan pod works");
  },
);
