// The local cluster itself (hack/cluster.sh) on real kubelets: control plane, nodes, Multus +
// macvlan, the problem the product solves (a node cannot reach its own macvlan pod), how a real
// kubelet reports a failed CNI ADD, the CLI, and a clean `down`. Kubelet and containerd specifics
// (images, cgroups, mounts, shims) are in kubelet.test.ts.
import test from "ava";
import * as fs from "node:fs";
import { isAlive, runAsync } from "../../hack/cluster/proc";
import { diffSnapshots, httpServer, macvlanNad, testPod, waitFor, withCluster } from "./helpers";
import type { Pod } from "./helpers";

const cluster = withCluster(test, { nodes: 2 });
const NS = "cluster-test";
const NODE1 = "pmv-node-1";
const NODE2 = "pmv-node-2";
const MV1 = "198.18.100.11";
const PROBED = "198.18.100.13";

test.before(async () => {
  const c = cluster();
  await c.createNamespace(NS);
  await c.apply(macvlanNad({ name: "lan", namespace: NS }));
});

test.serial("control plane is up and both nodes are Ready with their pod CIDRs", async t => {
  const c = cluster();
  const nodes = (await c.api.get("/api/v1/nodes")).items;
  t.deepEqual(nodes.map((n: Pod) => n.metadata.name).sort(), [NODE1, NODE2]);
  for (const n of nodes) {
    const spec = c.node(n.metadata.name);
    t.is(n.spec.podCIDR, spec.podCIDR);
    t.deepEqual(n.spec.podCIDRs, [spec.podCIDR]);
    t.is(n.status.conditions.find((x: { type: string }) => x.type === "Ready")?.status, "True");
    t.is(
      n.status.addresses.find((a: { type: string }) => a.type === "InternalIP")?.address,
      spec.ip,
    );
    t.falsy(
      (n.spec.taints ?? []).find((x: { key: string }) => x.key.startsWith("node.kubernetes.io/")),
    );
    const lease = await c.api.get(
      `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${spec.name}`,
    );
    t.true(Date.now() - Date.parse(lease.spec.renewTime) < 60000, "node lease renewed recently");
  }
  const crd = await c.api.get(
    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/network-attachment-definitions.k8s.cni.cncf.io",
  );
  t.true(
    crd.status.conditions.some(
      (x: { type: string; status: string }) => x.type === "Established" && x.status === "True",
    ),
  );
  const svc = await c.api.get("/api/v1/namespaces/default/services/kubernetes");
  t.is(svc.spec.clusterIP, "198.19.128.1");
  t.true(c.healthy());
  t.is((await c.kubectlResult(["get", "--raw", "/readyz"])).stdout.trim(), "ok");
});

test.serial(
  "a node cannot reach its own macvlan pod; probes on the macvlan IP fail (plain macvlan)",
  async t => {
    const c = cluster();
    await c.apply([
      testPod({
        name: "mv-1",
        namespace: NS,
        node: NODE1,
        command: httpServer(8080),
        networks: [{ name: "lan", namespace: NS, interface: "net1", ips: [`${MV1}/16`] }],
      }),
      // A readiness probe on the macvlan IP runs from the node (the kubelet's): it fails.
      testPod({
        name: "probe-mv",
        namespace: NS,
        node: NODE1,
        command: httpServer(8080),
        networks: [{ name: "lan", namespace: NS, interface: "net1", ips: [`${PROBED}/16`] }],
        readinessProbe: {
          httpGet: { host: PROBED, port: 8080, path: "/" },
          periodSeconds: 1,
          timeoutSeconds: 1,
        },
      }),
    ]);
    const p1 = await c.waitForPodReady(NS, "mv-1", { timeoutMs: 120000 });
    t.false(await c.ping(`node/${NODE1}`, MV1), "node-1 -> its own macvlan pod must fail");
    t.true(await c.ping(`node/${NODE2}`, MV1), "node-2 -> macvlan pod on node-1 (the LAN)");
    t.true(await c.ping(`node/${NODE1}`, p1.status.podIP), "node-1 -> its pod's eth0 works");
    t.true(await c.ping("netns/pmv-gw", MV1), "the LAN router reaches the macvlan pod");

    await c.waitForPod(NS, "probe-mv", p => p.status?.phase === "Running", { timeoutMs: 120000 });
    const event = await waitFor(
      async () => (await c.events(NS, "probe-mv")).find(e => e.reason === "Unhealthy"),
      { what: "Unhealthy event", timeoutMs: 60000 },
    );
    t.is(event.source.component, "kubelet");
    t.regex(event.message, /Readiness probe failed: Get "http:\/\/198\.18\.100\.13:8080\/"/);
    const again = (await c.getPod(NS, "probe-mv"))!;
    t.false(again.status.containerStatuses[0].ready);
    // The same server answers from the other node on net1.
    t.is((await c.httpGet(`node/${NODE2}`, `http://${PROBED}:8080/`)).body.trim(), "ok");
  },
);

test.serial(
  "a failed CNI ADD leaves the pod Pending with FailedCreatePodSandBox, and the kubelet retries",
  async t => {
    const c = cluster();
    await c.apply(
      testPod({
        name: "late-nad",
        namespace: NS,
        node: NODE2,
        networks: [{ name: "late", namespace: NS, interface: "net1", ips: ["198.18.100.14/16"] }],
      }),
    );
    const ev = await waitFor(
      async () => (await c.events(NS, "late-nad")).find(e => e.reason === "FailedCreatePodSandBox"),
      { what: "FailedCreatePodSandBox event", timeoutMs: 60000 },
    );
    t.is(ev.type, "Warning");
    t.regex(ev.message, /network-attachment-definition \(late\)|"late" not found/);
    t.is(ev.source.component, "kubelet");
    t.is((await c.getPod(NS, "late-nad"))!.status.phase, "Pending");
    // Once the network exists, the kubelet's next sandbox attempt succeeds.
    await c.apply(macvlanNad({ name: "late", namespace: NS }));
    const pod = await c.waitForPodReady(NS, "late-nad", { timeoutMs: 120000 });
    t.is(c.networkStatus(pod)[1]?.ips?.[0], "198.18.100.14");
  },
);

test.serial("the cluster CLI: status and exec", async t => {
  const c = cluster();
  const st = await runAsync("bash", ["hack/cluster.sh", "status"]);
  t.is(st.code, 0, st.stderr);
  t.regex(st.stdout, /kube-apiserver\s+\d+\s+running/);
  t.regex(st.stdout, /kubelet-pmv-node-1\s+\d+\s+running/);
  const ex = await runAsync("bash", [
    "hack/cluster.sh",
    "exec",
    `${NS}/mv-1`,
    "--",
    "ip",
    "-br",
    "addr",
    "show",
    "net1",
  ]);
  t.is(ex.code, 0, ex.stderr);
  t.regex(ex.stdout, new RegExp(`^net1@\\S+\\s+UP\\s+${MV1.replace(/\./g, "\\.")}/16`));
  const nx = await runAsync("bash", [
    "hack/cluster.sh",
    "exec",
    `node/${NODE2}`,
    "--",
    "sh",
    "-c",
    "exit 7",
  ]);
  t.is(nx.code, 7, "exit code is propagated");
  const lg = await runAsync("bash", ["hack/cluster.sh", "logs", `${NS}/mv-1`]);
  t.is(lg.code, 0, lg.stderr);
  void c;
});

test.serial("down leaves the machine as it found it", async t => {
  const c = cluster();
  await c.deleteNamespace(NS, true, 120000);
  const recorded = c.processes();
  await c.down();
  const after = c.after!;
  const diff = diffSnapshots(c.before, after);
  if (diff.others.length)
    t.log(
      `changes not made by the cluster (other work on this machine):\n${diff.others.join("\n")}`,
    );
  t.deepEqual(diff.ours, []);
  t.false(fs.existsSync(c.kubeconfig));
  t.deepEqual(
    after.netns.filter(n => n.startsWith("pmv-")),
    [],
  );
  t.false(after.links.includes("pmv-host"));
  for (const r of recorded) t.false(isAlive(r), `${r.name} (pid ${r.pid}) stopped`);
});
