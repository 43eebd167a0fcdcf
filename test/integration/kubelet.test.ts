// The local cluster with real kubelets (`hack/cluster.sh up`): containerd and a
// kubelet v1.34 per node, images imported without a registry, Multus + macvlan called through the
// CRI, and a `down` that leaves no containerd, kubelet, shim, mount or cgroup behind.
import test from "ava";
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT, paths } from "../../hack/cluster/config";
import { isAlive, procRssKiB, run, runAsync } from "../../hack/cluster/proc";
import {
  BUSYBOX_IMAGES,
  CRI_NAMESPACE,
  KUBELET_STATE,
  PAUSE_IMAGE,
  kubeletNodePaths,
} from "../../hack/kubelet/config";
import { agentImageRef, controllerImageRef } from "../../hack/kubelet/images";
import { cgroupMounts, mounts } from "../../hack/kubelet/runtime";
import {
  diffSnapshots,
  hostSnapshot,
  httpServer,
  macvlanNad,
  podNetns,
  podReady,
  testPod,
  waitFor,
  withCluster,
} from "./helpers";
import type { Pod } from "./helpers";

const cluster = withCluster(test, { nodes: 2 });
const NS = "kubelet-test";
const PODS = [
  { name: "mv-1", node: "pmv-node-1", ip: "198.18.100.21" },
  { name: "mv-2", node: "pmv-node-2", ip: "198.18.100.22" },
];

/** Host directories containerd and libcni create; what did not exist before must be gone after. */
const HOST_DIRS = ["/run/containerd", "/var/lib/cni", KUBELET_STATE];
const hostDirsBefore = HOST_DIRS.filter(d => fs.existsSync(d));

const ctr = (node: string, ...args: string[]) =>
  run("ctr", [
    "--address",
    kubeletNodePaths(node).containerdSock,
    "--namespace",
    CRI_NAMESPACE,
    ...args,
  ]);

/** Mounts below the cluster's or the kubelet runtime's state directory (host mount namespace). */
const stateMounts = () =>
  mounts()
    .map(m => m.mountPoint)
    .filter(m => m.startsWith(`${paths.state}/`) || m.startsWith(`${KUBELET_STATE}/`));

/** cgroup directories of the nodes (kubelet cgroupRoot /pmv-node-N) in any hierarchy. */
const nodeCgroups = () =>
  cgroupMounts().flatMap(h =>
    fs
      .readdirSync(h)
      .filter(d => d.startsWith("pmv-node-"))
      .map(d => path.join(h, d)),
  );

test.before(async () => {
  await cluster().createNamespace(NS);
});

test.serial("two nodes registered by their kubelets (containerd, v1.34.4) are Ready", async t => {
  const c = cluster();
  const nodes = (await c.api.get("/api/v1/nodes")).items as Pod[];
  t.deepEqual(nodes.map(n => n.metadata.name).sort(), ["pmv-node-1", "pmv-node-2"]);
  for (const n of nodes) {
    const spec = c.node(n.metadata.name!);
    t.is(n.status.nodeInfo.kubeletVersion, "v1.34.4");
    t.regex(n.status.nodeInfo.containerRuntimeVersion, /^containerd:\/\//);
    t.is(n.spec.podCIDR, spec.podCIDR);
    t.is(
      n.status.addresses.find((a: { type: string }) => a.type === "InternalIP")?.address,
      spec.ip,
    );
    t.is(n.status.conditions.find((x: { type: string }) => x.type === "Ready")?.status, "True");
    t.is(n.status.daemonEndpoints.kubeletEndpoint.Port, 10250);
    // The images were imported, not pulled: each node's containerd has all of them.
    const images = ctr(spec.name, "images", "ls", "-q").stdout.split("\n");
    for (const ref of [PAUSE_IMAGE, ...BUSYBOX_IMAGES, controllerImageRef(), agentImageRef()])
      t.true(images.includes(ref), `${ref} on ${spec.name}`);
  }
  const procs = c.processes();
  for (const n of c.nodes) {
    for (const name of [`kubelet-${n.name}`, `containerd-${n.name}`]) {
      const r = procs.find(p => p.name === name);
      t.truthy(r, `${name} recorded`);
      t.true(!!r && isAlive(r), `${name} running`);
      if (r) t.log(`${name}: ${(procRssKiB(r.pid) / 1024).toFixed(0)} MiB RSS`);
    }
  }
});

test.serial("busybox pods get a macvlan net1 through Multus on both kubelet nodes", async t => {
  const c = cluster();
  await c.apply([
    macvlanNad({ name: "lan", namespace: NS }),
    ...PODS.map(p => {
      const pod = testPod({
        name: p.name,
        namespace: NS,
        node: p.node,
        command: ["sh", "-c", `echo hello from $(hostname); ${httpServer(8080)[2]}`],
        networks: [{ name: "lan", namespace: NS, interface: "net1", ips: [`${p.ip}/16`] }],
        readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
      });
      return pod;
    }),
  ]);
  const pods: Record<string, Pod> = {};
  for (const p of PODS) {
    const pod = await c.waitForPodReady(NS, p.name, { timeoutMs: 120000 });
    pods[p.name] = pod;
    const spec = c.node(p.node);
    t.is(pod.spec.nodeName, p.node);
    t.is(pod.status.hostIP, spec.ip);
    t.true(pod.status.podIP.startsWith(spec.podCIDR.replace(/0\/24$/, "")), pod.status.podIP);
    const cs = pod.status.containerStatuses[0];
    t.regex(cs.containerID, /^containerd:\/\//);
    t.is(cs.image, "docker.io/library/busybox:1.36");
    const ns = c.networkStatus(pod);
    t.is(ns.length, 2, JSON.stringify(ns));
    t.like(ns[0], {
      name: "pmv-cluster",
      interface: "eth0",
      ips: [pod.status.podIP],
      default: true,
    });
    t.like(ns[1], { name: `${NS}/lan`, interface: "net1", ips: [p.ip] });
    // The pod's network namespace also is also named pmv-pod-<uid> (Multus wrapper).
    t.true(c.netnsExists(podNetns(pod.metadata.uid!)));
    const addr = await c.execOk(`${NS}/${p.name}`, [
      "ip",
      "-br",
      "-4",
      "addr",
      "show",
      "dev",
      "net1",
    ]);
    t.true(addr.includes(`${p.ip}/16`), addr);
    // A real container: its own hostname (UTS namespace), output in the kubelet's pod log dir.
    const log = path.join(
      kubeletNodePaths(p.node).podLogs,
      `${NS}_${p.name}_${pod.metadata.uid}`,
      "main",
      "0.log",
    );
    const text = await waitFor(
      () =>
        fs.existsSync(log) &&
        fs.readFileSync(log, "utf8").includes("hello") &&
        fs.readFileSync(log, "utf8"),
      { what: `log ${log}`, timeoutMs: 10000 },
    );
    t.regex(text, new RegExp(`hello from ${p.name}`));
  }
  // Pod to pod across the nodes, on net1 (the LAN) and on eth0 (the cluster network).
  t.true(await c.ping(`${NS}/mv-1`, PODS[1].ip), "mv-1 -> mv-2 on net1");
  t.true(await c.ping(`${NS}/mv-2`, PODS[0].ip), "mv-2 -> mv-1 on net1");
  t.true(await c.ping(`${NS}/mv-1`, pods["mv-2"].status.podIP), "mv-1 -> mv-2 on eth0");
  const r = await c.httpGet(`${NS}/mv-2`, `http://${PODS[0].ip}:8080/`);
  t.is(r.status, 200);
  t.is(r.body.trim(), "ok");
  t.true(await c.ping("netns/pmv-gw", PODS[1].ip), "the LAN router reaches mv-2 on net1");
});

test.serial("pods reach the apiserver through the kubernetes Service (kube-proxy)", async t => {
  const c = cluster();
  const r = await c.exec(`${NS}/mv-1`, ["curl", "-sk", "-m", "5", "https://198.19.128.1/healthz"]);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout.trim(), "ok");
});

test.serial("the node agent's DaemonSet runs on both kubelet nodes from its image", async t => {
  const c = cluster();
  await c.kubectl(["apply", "-f", path.join(REPO_ROOT, "crds")]);
  await c.kubectl([
    "wait",
    "--for=condition=Established",
    "--timeout=60s",
    "crd/macvlansubnets.macvlan.dev",
    "crd/macvlanleases.macvlan.dev",
  ]);
  await c.createNamespace("pepr-system");
  await c.kubectl(["apply", "-f", path.join(REPO_ROOT, "agent", "deploy", "agent.yaml")]);
  const agents = await waitFor(
    async () => {
      const pods = await c.listPods("pepr-system", "app.kubernetes.io/name=pepr-macvlan-agent");
      return pods.length === 2 && pods.every(podReady) && pods;
    },
    { what: "agent pods Ready on both nodes", timeoutMs: 120000 },
  );
  t.deepEqual(agents.map(p => p.spec.nodeName).sort(), ["pmv-node-1", "pmv-node-2"]);
  for (const p of agents) t.is(p.spec.containers[0].image, agentImageRef());
  // The agent reconciles a subnet in the node's network namespace (host network pod): its shim.
  await c.apply({
    apiVersion: "macvlan.dev/v1alpha1",
    kind: "MacvlanSubnet",
    metadata: { name: "kubelet-lan" },
    spec: { master: "eth0", cidr: "198.18.100.0/24", gateway: "198.18.100.1" },
  });
  for (const n of c.nodes) {
    const links = await waitFor(
      async () => {
        const out = await c.execOk(`node/${n.name}`, ["ip", "-br", "link"]);
        return /^mvshim-\S+@eth0\s/m.test(out) && out;
      },
      { what: `shim on ${n.name}`, timeoutMs: 60000 },
    );
    t.regex(links, /mvshim-/);
  }
});

test.serial("deleting a pod tears its sandbox down (CNI DEL, netns, shim)", async t => {
  const c = cluster();
  const pod = (await c.getPod(NS, "mv-2"))!;
  const uid = pod.metadata.uid!;
  await c.kubectl(["-n", NS, "delete", "pod", "mv-2", "--wait=true", "--timeout=60s"]);
  await waitFor(() => !c.netnsExists(podNetns(uid)), { what: "pod netns alias removed" });
  await waitFor(() => !ctr("pmv-node-2", "containers", "ls").stdout.includes(uid), {
    what: "containers of mv-2 removed from containerd",
    timeoutMs: 30000,
  });
  // The macvlan address is free again: another pod can take it on the other node.
  await c.apply(
    testPod({
      name: "mv-3",
      namespace: NS,
      node: "pmv-node-1",
      command: ["sleep", "3600"],
      networks: [{ name: "lan", namespace: NS, interface: "net1", ips: [`${PODS[1].ip}/16`] }],
    }),
  );
  await c.waitForPod(NS, "mv-3", p => p.status?.phase === "Running", { timeoutMs: 60000 });
  t.true(await c.ping(`${NS}/mv-1`, PODS[1].ip), "mv-1 -> mv-3 on the reused address");
});

test.serial(
  "down with pods running removes containerd, kubelets, shims, mounts and cgroups",
  async t => {
    const c = cluster();
    const recorded = c.processes();
    t.true(stateMounts().length > 0, "overlay, shm, netns and volume mounts while pods run");
    t.true(nodeCgroups().length > 0);
    // Through the CLI while this file still holds the session lock (Cluster.down would release
    // it, and another test file could take the machine before withCluster's own down runs).
    const r = await runAsync("bash", [path.join(REPO_ROOT, "hack", "cluster.sh"), "down"], {
      timeoutMs: 120000,
    });
    t.is(r.code, 0, r.stderr || r.stdout);
    const after = hostSnapshot(c.info.binDir);
    const diff = diffSnapshots(c.before, after);
    if (diff.others.length)
      t.log(
        `changes not made by the cluster (other work on this machine):\n${diff.others.join("\n")}`,
      );
    t.deepEqual(diff.ours, []);
    for (const r of recorded) t.false(isAlive(r), `${r.name} (pid ${r.pid}) stopped`);
    t.deepEqual(stateMounts(), []);
    t.deepEqual(
      HOST_DIRS.filter(d => fs.existsSync(d)),
      hostDirsBefore,
    );
    t.deepEqual(nodeCgroups(), []);
    t.false(fs.existsSync(paths.state));
    // No kubelet, containerd or shim of the runtime (they name its state dir on their command line).
    t.is(run("pgrep", ["-af", KUBELET_STATE]).stdout.trim(), "");
    t.deepEqual(
      after.netns.filter(n => n.startsWith("pmv-")),
      [],
    );
  },
);
