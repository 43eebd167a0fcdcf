// The local cluster itself (hack/cluster.sh): control plane, nodes, Multus + macvlan, the node
// runtime (sandbox, CNI ADD/DEL, status, probes, deletion, restart), and a clean `down`.
import test from "ava";
import * as fs from "node:fs";
import * as path from "node:path";
import { startNodeRuntime } from "../../hack/cluster/cluster";
import { REPO_ROOT, nodePaths, paths } from "../../hack/cluster/config";
import { Pki } from "../../hack/cluster/pki";
import { isAlive, stopProcess } from "../../hack/cluster/proc";
import {
  diffSnapshots,
  httpServer,
  macvlanNad,
  podNetns,
  testPod,
  waitFor,
  withCluster,
} from "./helpers";
import type { Pod } from "./helpers";

const cluster = withCluster(test, { nodes: 2 });
const NS = "cluster-test";
const NODE1 = "pmv-node-1";
const NODE2 = "pmv-node-2";
const MV1 = "198.18.100.11";
const MV2 = "198.18.100.12";

test.before(async () => {
  await cluster().createNamespace(NS);
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
    t.true(Date.now() - Date.parse(lease.spec.renewTime) < 30000, "node lease renewed recently");
  }
  const crd = await c.api.get(
    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/network-attachment-definitions.k8s.cni.cncf.io",
  );
  t.true(
    crd.status.conditions.some(
      (x: { type: string; status: string }) => x.type === "Established" && x.status === "True",
    ),
  );
  // The kubernetes Service points at the LAN address of the apiserver.
  const svc = await c.api.get("/api/v1/namespaces/default/services/kubernetes");
  t.is(svc.spec.clusterIP, "198.19.128.1");
  t.true(c.healthy());
  // The CLI agrees.
  t.is((await c.kubectlResult(["get", "--raw", "/readyz"])).stdout.trim(), "ok");
});

test.serial(
  "macvlan pods on both nodes get net1 with their fixed IPs and a network-status annotation",
  async t => {
    const c = cluster();
    await c.apply([
      macvlanNad({ name: "lan", namespace: NS }),
      ...[
        { name: "mv-1", node: NODE1, ip: MV1 },
        { name: "mv-2", node: NODE2, ip: MV2 },
      ].map(p =>
        testPod({
          name: p.name,
          namespace: NS,
          node: p.node,
          command: httpServer(8080),
          networks: [{ name: "lan", namespace: NS, interface: "net1", ips: [`${p.ip}/24`] }],
          readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
        }),
      ),
    ]);
    for (const [name, node, ip] of [
      ["mv-1", NODE1, MV1],
      ["mv-2", NODE2, MV2],
    ]) {
      const pod = await c.waitForPodReady(NS, name);
      t.is(pod.spec.nodeName, node);
      t.is(pod.status.phase, "Running");
      const spec = c.node(node);
      t.true(
        pod.status.podIP.startsWith(spec.podCIDR.replace(/0\/24$/, "")),
        `eth0 IP ${pod.status.podIP} in ${spec.podCIDR}`,
      );
      t.deepEqual(pod.status.podIPs, [{ ip: pod.status.podIP }]);
      t.is(pod.status.hostIP, spec.ip);
      t.true(pod.status.containerStatuses[0].ready);
      const ns = c.networkStatus(pod);
      t.is(ns.length, 2, JSON.stringify(ns));
      t.like(ns[0], {
        name: "pmv-cluster",
        interface: "eth0",
        ips: [pod.status.podIP],
        default: true,
      });
      t.like(ns[1], { name: `${NS}/lan`, interface: "net1", ips: [ip] });
      t.regex(ns[1].mac ?? "", /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
      // Inside the pod's network namespace (pmv-pod-<uid>).
      t.true(c.netnsExists(podNetns(pod.metadata.uid!)));
      const addr = await c.execOk(`${NS}/${name}`, [
        "ip",
        "-br",
        "-4",
        "addr",
        "show",
        "dev",
        "net1",
      ]);
      t.true(addr.includes(`${ip}/24`), addr);
      // Multus was called like the kubelet does it: one ADD on the pod's node.
      const adds = c.cniLog(node).filter(e => e.uid === pod.metadata.uid && e.command === "ADD");
      t.is(adds.length, 1);
      t.true(adds[0].ok);
      t.is(adds[0].netns, `/run/netns/${podNetns(pod.metadata.uid!)}`);
      t.is(adds[0].ifname, "eth0");
    }
  },
);

test.serial(
  "pods reach each other across nodes on net1 (macvlan) and on eth0 (cluster network)",
  async t => {
    const c = cluster();
    const p1 = (await c.getPod(NS, "mv-1"))!;
    const p2 = (await c.getPod(NS, "mv-2"))!;
    t.true(await c.ping(`${NS}/mv-1`, MV2), "mv-1 -> mv-2 on net1");
    t.true(await c.ping(`${NS}/mv-2`, MV1), "mv-2 -> mv-1 on net1");
    t.true(await c.ping(`${NS}/mv-1`, p2.status.podIP), "mv-1 -> mv-2 on eth0");
    t.true(await c.ping(`${NS}/mv-2`, p1.status.podIP), "mv-2 -> mv-1 on eth0");
    // TCP too, and from the host network namespace (where the apiserver runs) to a pod.
    const r = await c.httpGet(`${NS}/mv-2`, `http://${MV1}:8080/`);
    t.is(r.status, 200);
    t.is(r.body.trim(), "ok");
    const res = await fetch(`http://${p1.status.podIP}:8080/`);
    t.is((await res.text()).trim(), "ok");
  },
);

test.serial(
  "a node cannot reach its own macvlan pod; probes on the macvlan IP fail (plain macvlan)",
  async t => {
    const c = cluster();
    const p1 = (await c.getPod(NS, "mv-1"))!;
    t.false(
      await c.ping(`node/${NODE1}`, MV1, { count: 2 }),
      "node-1 -> its own macvlan pod must fail",
    );
    t.true(
      await c.ping(`node/${NODE2}`, MV1),
      "node-2 -> macvlan pod on node-1 works through the LAN",
    );
    t.true(await c.ping(`node/${NODE1}`, p1.status.podIP), "node-1 -> its pod's eth0 works");
    t.true(await c.ping("netns/pmv-gw", MV1), "the LAN router reaches the macvlan pod");

    // A readiness probe on the macvlan IP runs from the node, like the kubelet's: it fails.
    await c.apply(
      testPod({
        name: "probe-mv",
        namespace: NS,
        node: NODE1,
        command: httpServer(8080),
        networks: [{ name: "lan", namespace: NS, interface: "net1", ips: ["198.18.100.13/24"] }],
        readinessProbe: {
          httpGet: { host: "198.18.100.13", port: 8080, path: "/" },
          periodSeconds: 1,
          timeoutSeconds: 1,
        },
      }),
    );
    const pod = await c.waitForPod(NS, "probe-mv", p => p.status?.phase === "Running");
    const event = await waitFor(
      async () => (await c.events(NS, "probe-mv")).find(e => e.reason === "Unhealthy"),
      {
        what: "Unhealthy event",
        timeoutMs: 30000,
      },
    );
    t.regex(event.message, /Readiness probe failed: Get "http:\/\/198\.18\.100\.13:8080\/"/);
    const again = (await c.getPod(NS, "probe-mv"))!;
    t.false(again.status.containerStatuses[0].ready);
    t.is(again.status.conditions.find((x: { type: string }) => x.type === "Ready").status, "False");
    // The same server answers on the pod's eth0 IP, and from the other node on net1.
    t.is((await c.httpGet(`node/${NODE2}`, "http://198.18.100.13:8080/")).body.trim(), "ok");
    t.is((await c.httpGet(`node/${NODE1}`, `http://${pod.status.podIP}:8080/`)).body.trim(), "ok");
    t.is((await c.httpGet(`node/${NODE1}`, "http://198.18.100.13:8080/", 2)).status, 0);
    t.truthy(pod.status.podIP);
    await c.kubectl(["delete", "pod", "-n", NS, "probe-mv", "--wait=false"]);
  },
);

test.serial(
  "a failed CNI ADD leaves the pod Pending with FailedCreatePodSandBox, and is retried",
  async t => {
    const c = cluster();
    await c.apply(
      testPod({
        name: "late-nad",
        namespace: NS,
        node: NODE2,
        networks: [{ name: "late", namespace: NS, interface: "net1", ips: ["198.18.100.14/24"] }],
      }),
    );
    const ev = await waitFor(
      async () => (await c.events(NS, "late-nad")).find(e => e.reason === "FailedCreatePodSandBox"),
      { what: "FailedCreatePodSandBox event", timeoutMs: 30000 },
    );
    t.is(ev.type, "Warning");
    t.regex(ev.message, /late/);
    t.is(ev.source.component, "kubelet");
    const pending = (await c.getPod(NS, "late-nad"))!;
    t.is(pending.status.phase, "Pending");
    t.is(pending.status.containerStatuses?.[0]?.state?.waiting?.reason, "ContainerCreating");
    // The node runtime released what the failed attempt had (CNI DEL) and removed the netns.
    const uid = pending.metadata.uid!;
    const calls = c.cniLog(NODE2).filter(e => e.uid === uid);
    t.true(calls.some(e => e.command === "ADD" && !e.ok));
    t.true(calls.some(e => e.command === "DEL"));
    // Once the network exists, the retry (with backoff) succeeds.
    await c.apply(macvlanNad({ name: "late", namespace: NS }));
    const pod = await c.waitForPodReady(NS, "late-nad", { timeoutMs: 60000 });
    t.is(c.networkStatus(pod)[1]?.ips?.[0], "198.18.100.14");
  },
);

test.serial("deleting pods runs CNI DEL and leaves no netns, IP or process behind", async t => {
  const c = cluster();
  const pods: Pod[] = [];
  for (const name of ["mv-1", "mv-2", "late-nad", "probe-mv"]) {
    const p = await c.getPod(NS, name);
    if (p) pods.push(p);
  }
  const held = pods.map(p => ({
    pod: p,
    node: p.spec.nodeName as string,
    ip: p.status?.podIP as string | undefined,
    pids: Object.values(c.podState(p.spec.nodeName, p.metadata.uid!)?.containers ?? {}).flatMap(
      x => (x.run ? [x.run] : []),
    ),
  }));
  for (const h of held)
    if (h.ip) t.true(c.hostLocalIPs(h.node).includes(h.ip), `host-local holds ${h.ip}`);
  await c.kubectl(["delete", "pod", "-n", NS, ...pods.map(p => p.metadata.name!), "--wait=false"]);
  for (const p of pods) await c.waitForPodGone(NS, p.metadata.name!, { timeoutMs: 60000 });
  for (const h of held) {
    const uid = h.pod.metadata.uid!;
    const dels = c.cniLog(h.node).filter(e => e.uid === uid && e.command === "DEL");
    t.true(
      dels.length >= 1 && dels[dels.length - 1].ok,
      `CNI DEL ran for ${h.pod.metadata.name}: ${JSON.stringify(dels)}`,
    );
    t.false(c.netnsExists(podNetns(uid)), `netns of ${h.pod.metadata.name} removed`);
    if (h.ip) t.false(c.hostLocalIPs(h.node).includes(h.ip), `host-local released ${h.ip}`);
    t.is(c.podState(h.node, uid), undefined, "node runtime state removed");
    for (const rec of h.pids) t.false(isSame(rec), `process ${rec.pid} gone`);
  }
  // Neither Multus nor libcni keep cache entries for the deleted sandboxes.
  for (const h of held) {
    const sandbox = c.cniLog(h.node).find(e => e.uid === h.pod.metadata.uid)?.containerId ?? "none";
    const cached = listFiles(nodePaths(h.node).multusCache).filter(f => f.includes(sandbox));
    t.deepEqual(cached, [], `multus cache of ${h.pod.metadata.name}`);
  }
  t.deepEqual(
    (await c.listPods(NS)).map(p => p.metadata.name),
    [],
  );
});

function listFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true }).map(String);
}

/** The recorded process still runs (a zombie waiting for init to reap it counts as gone). */
const isSame = (rec: { pid: number; startTime: string }) => isAlive(rec);

test.serial("a Deployment of 3 pods reaches Running on both nodes", async t => {
  const c = cluster();
  await c.apply({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web", namespace: NS },
    spec: {
      replicas: 3,
      selector: { matchLabels: { app: "web" } },
      template: {
        metadata: { labels: { app: "web" } },
        spec: {
          terminationGracePeriodSeconds: 5,
          topologySpreadConstraints: [
            {
              maxSkew: 1,
              topologyKey: "kubernetes.io/hostname",
              whenUnsatisfiable: "DoNotSchedule",
              labelSelector: { matchLabels: { app: "web" } },
            },
          ],
          containers: [
            {
              name: "web",
              image: "busybox",
              command: httpServer(8080),
              readinessProbe: { httpGet: { path: "/", port: "http" }, periodSeconds: 1 },
              ports: [{ name: "http", containerPort: 8080 }],
            },
          ],
        },
      },
    },
  });
  const dep = await waitFor(
    async () => {
      const d = await c.api.get(`/apis/apps/v1/namespaces/${NS}/deployments/web`);
      return d.status?.readyReplicas === 3 && d.status?.availableReplicas === 3 ? d : undefined;
    },
    { what: "deployment web with 3 ready replicas", timeoutMs: 90000 },
  );
  t.is(dep.status.replicas, 3);
  const pods = await c.listPods(NS, "app=web");
  t.is(pods.length, 3);
  t.true(pods.every(p => p.status.phase === "Running"));
  t.deepEqual([...new Set(pods.map(p => p.spec.nodeName))].sort(), [NODE1, NODE2]);
  // EndpointSlices follow readiness (the controller-manager sees the node runtime's status).
  await c.apply({
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: "web", namespace: NS },
    spec: { selector: { app: "web" }, ports: [{ port: 80, targetPort: "http" }] },
  });
  const slices = await waitFor(
    async () => {
      const l = await c.api.get(`/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices`, {
        labelSelector: "kubernetes.io/service-name=web",
      });
      const eps = l.items.flatMap((s: { endpoints?: unknown[] }) => s.endpoints ?? []);
      return eps.length === 3 ? eps : undefined;
    },
    { what: "3 endpoints for service web" },
  );
  t.is(slices.length, 3);
  // Scale down: the ReplicaSet deletes a pod gracefully, the node runtime finishes it.
  await c.kubectl(["scale", "-n", NS, "deployment/web", "--replicas=1"]);
  await waitFor(async () => ((await c.listPods(NS, "app=web")).length === 1 ? true : undefined), {
    what: "scale down to 1",
    timeoutMs: 60000,
  });
  t.pass();
});

test.serial(
  "hostNetwork pods run in the node's namespace with downward-API env and a service-account kubeconfig",
  async t => {
    const c = cluster();
    const kubectl = c.kubectlPath;
    await c.apply({
      apiVersion: "apps/v1",
      kind: "DaemonSet",
      metadata: { name: "agent", namespace: NS },
      spec: {
        selector: { matchLabels: { app: "agent" } },
        template: {
          metadata: { labels: { app: "agent" } },
          spec: {
            hostNetwork: true,
            terminationGracePeriodSeconds: 2,
            containers: [
              {
                name: "agent",
                image: "agent",
                env: [
                  { name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
                  { name: "GREETING", value: "hello-$(NODE_NAME)" },
                ],
                command: [
                  "sh",
                  "-c",
                  `echo "$GREETING"; ${kubectl} auth whoami -o jsonpath='{.status.userInfo.username}'; echo; exec sleep infinity`,
                ],
              },
            ],
          },
        },
      },
    });
    const pods = await waitFor(
      async () => {
        const l = await c.listPods(NS, "app=agent");
        return l.length === 2 && l.every(p => p.status?.phase === "Running") ? l : undefined;
      },
      { what: "agent pods running on both nodes" },
    );
    for (const p of pods) {
      const node = c.node(p.spec.nodeName);
      t.is(p.status.podIP, node.ip, "hostNetwork pod IP is the node IP");
      const log = await waitFor(
        async () => {
          const l = await c.podLog(NS, p.metadata.name!);
          return l.includes("system:serviceaccount") ? l : undefined;
        },
        { what: `log of ${p.metadata.name}` },
      );
      t.true(log.includes(`hello-${node.name}`), log);
      t.true(log.includes(`system:serviceaccount:${NS}:default`), log);
      // exec into a hostNetwork pod lands in the node's namespace.
      const addr = await c.execOk(`${NS}/${p.metadata.name}`, [
        "ip",
        "-br",
        "-4",
        "addr",
        "show",
        "dev",
        "eth0",
      ]);
      t.true(addr.includes(node.ip), addr);
    }
    await c.kubectl(["delete", "daemonset", "-n", NS, "agent", "--wait=false"]);
  },
);

test.serial(
  "the apiserver calls admission webhooks served by a pod and by a hostNetwork pod, via Services",
  async t => {
    const c = cluster();
    const dir = path.join(paths.state, "test-webhook");
    const pki = new Pki(dir);
    pki.ca("ca", "test-webhook-ca");
    const certs = ["wh", "wh-host"].map(svc =>
      pki.issue("ca", {
        name: svc,
        cn: `${svc}.${NS}.svc`,
        server: true,
        dns: [`${svc}.${NS}.svc`],
      }),
    );
    const server = (
      name: string,
      prefix: string,
      cert: { cert: string; key: string },
      hostNetwork: boolean,
      port: number,
    ) => ({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace: NS, labels: { app: name } },
      spec: {
        hostNetwork,
        nodeSelector: { "kubernetes.io/hostname": hostNetwork ? NODE2 : NODE1 },
        terminationGracePeriodSeconds: 2,
        containers: [
          {
            name: "webhook",
            image: "node",
            workingDir: REPO_ROOT,
            command: [
              process.execPath,
              "--import",
              "tsx",
              "test/integration/helpers/fixtures/webhook-server.ts",
            ],
            env: [
              { name: "CERT_FILE", value: cert.cert },
              { name: "KEY_FILE", value: cert.key },
              { name: "PORT", value: String(port) },
              { name: "DENY_PREFIX", value: prefix },
              { name: "WHO", value: name },
            ],
            ports: [{ name: "https", containerPort: port }],
            readinessProbe: {
              httpGet: { scheme: "HTTPS", path: "/healthz", port: "https" },
              periodSeconds: 1,
            },
          },
        ],
      },
    });
    const service = (name: string) => ({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name, namespace: NS },
      spec: { selector: { app: name }, ports: [{ port: 443, targetPort: "https" }] },
    });
    const webhook = (name: string, svc: string) => ({
      name: `${name}.pmv.test`,
      clientConfig: {
        service: { namespace: NS, name: svc, port: 443, path: "/validate" },
        caBundle: fs.readFileSync(pki.file("ca.crt")).toString("base64"),
      },
      rules: [
        { apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["configmaps"] },
      ],
      namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": NS } },
      failurePolicy: "Fail",
      sideEffects: "None",
      admissionReviewVersions: ["v1"],
      timeoutSeconds: 5,
    });
    await c.apply([
      server("wh", "deny-a-", certs[0], false, 8443),
      server("wh-host", "deny-b-", certs[1], true, 9443),
      service("wh"),
      service("wh-host"),
    ]);
    const pod = await c.waitForPodReady(NS, "wh", { timeoutMs: 60000 });
    const hostPod = await c.waitForPodReady(NS, "wh-host", { timeoutMs: 60000 });
    t.is(hostPod.status.podIP, c.node(NODE2).ip);
    await c.apply({
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingWebhookConfiguration",
      metadata: { name: "pmv-cluster-test" },
      webhooks: [webhook("pod", "wh"), webhook("host", "wh-host")],
    });
    const create = (name: string) =>
      c.kubectlResult(["create", "configmap", "-n", NS, name, "--from-literal=k=v"], {
        timeoutMs: 20000,
      });
    // The apiserver picks the webhook configuration up within a moment.
    const denied = await waitFor(
      async () => {
        const r = await create(`deny-a-${Date.now()}`);
        return r.code !== 0 && r.stderr.includes("denied by wh:") ? r : undefined;
      },
      { what: "the pod webhook to deny", timeoutMs: 30000 },
    );
    t.regex(
      denied.stderr,
      /admission webhook "pod\.pmv\.test" denied the request: denied by wh: name starts with deny-a-/,
    );
    const deniedHost = await create("deny-b-1");
    t.regex(
      deniedHost.stderr,
      /admission webhook "host\.pmv\.test" denied the request: denied by wh-host/,
    );
    t.is((await create("allowed-1")).code, 0);
    // Both servers saw the apiserver's calls (from the host network namespace).
    t.regex(await c.podLog(NS, "wh"), /CREATE deny-a-\d+ from .*198\.18\.0\.2: denied/);
    t.regex(await c.podLog(NS, "wh-host"), /CREATE deny-b-1 from .*198\.18\.0\.2: denied/);
    t.truthy(pod.status.podIP);
    await c.kubectl(["delete", "validatingwebhookconfiguration", "pmv-cluster-test"]);
    await c.kubectl(["delete", "pod,service", "-n", NS, "wh", "wh-host", "--wait=false"]);
  },
);

test.serial("a failing liveness probe restarts the container", async t => {
  const c = cluster();
  await c.apply(
    testPod({
      name: "flaky",
      namespace: NS,
      node: NODE2,
      command: ["sh", "-c", "echo started; exec sleep infinity"],
      livenessProbe: {
        exec: { command: ["sh", "-c", "test ! -e /nonexistent-so-this-fails"] },
        periodSeconds: 1,
      },
    }),
  );
  await c.waitForPodReady(NS, "flaky");
  // Make the probe fail: liveness exec commands run in the pod's network namespace.
  await c.apply({
    ...testPod({
      name: "flaky2",
      namespace: NS,
      node: NODE2,
      livenessProbe: { tcpSocket: { port: 9 }, periodSeconds: 1, failureThreshold: 2 },
    }),
  });
  const restarted = await c.waitForPod(
    NS,
    "flaky2",
    p => (p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1,
    {
      what: "flaky2 restarted",
      timeoutMs: 30000,
    },
  );
  t.is(restarted.status.containerStatuses[0].lastState.terminated.reason, "Error");
  const killing = (await c.events(NS, "flaky2")).find(e => e.reason === "Killing");
  t.regex(killing?.message ?? "", /failed liveness probe/);
  // The passing liveness probe never restarted "flaky".
  t.is((await c.getPod(NS, "flaky"))!.status.containerStatuses[0].restartCount, 0);
  await c.kubectl(["delete", "pod", "-n", NS, "flaky", "flaky2", "--wait=false"]);
});

test.serial(
  "a restarted node runtime adopts running pods and cleans up pods deleted meanwhile",
  async t => {
    const c = cluster();
    await c.apply([
      testPod({ name: "stay", namespace: NS, node: NODE1 }),
      testPod({ name: "go", namespace: NS, node: NODE1 }),
    ]);
    const stay = await c.waitForPodReady(NS, "stay");
    const go = await c.waitForPodReady(NS, "go");
    const stayPid = c.podState(NODE1, stay.metadata.uid!)!.containers.main.run!.pid;
    const rt = c.processes().find(p => p.name === `node-runtime-${NODE1}`)!;
    t.truthy(rt);
    t.true(await stopProcess(rt, 5000));
    // While the runtime is down: force-delete one pod (nobody runs CNI DEL for it now).
    await c.kubectl(["delete", "pod", "-n", NS, "go", "--grace-period=0", "--force"]);
    await c.waitForPodGone(NS, "go");
    t.true(
      c.netnsExists(podNetns(go.metadata.uid!)),
      "netns still there while the runtime is down",
    );
    startNodeRuntime(c.node(NODE1));
    await waitFor(() => !c.netnsExists(podNetns(go.metadata.uid!)), {
      what: "orphan netns cleaned",
      timeoutMs: 30000,
    });
    t.true(c.cniLog(NODE1).some(e => e.uid === go.metadata.uid && e.command === "DEL" && e.ok));
    // The surviving pod kept its process and stays Ready.
    const st = c.podState(NODE1, stay.metadata.uid!)!;
    t.is(st.containers.main.run?.pid, stayPid);
    t.true(fs.existsSync(`/proc/${stayPid}`));
    t.truthy(await c.waitForPodReady(NS, "stay"));
    t.true(await c.ping(`node/${NODE2}`, stay.status.podIP));
  },
);

test.serial("the cluster CLI: status and exec", async t => {
  const c = cluster();
  const { runAsync } = await import("../../hack/cluster/proc");
  const st = await runAsync("bash", ["hack/cluster.sh", "status"]);
  t.is(st.code, 0, st.stderr);
  t.regex(st.stdout, /kube-apiserver\s+\d+\s+running/);
  const ex = await runAsync("bash", [
    "hack/cluster.sh",
    "exec",
    `${NS}/stay`,
    "--",
    "ip",
    "-br",
    "link",
    "show",
    "eth0",
  ]);
  t.is(ex.code, 0, ex.stderr);
  t.regex(ex.stdout, /^eth0@/);
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
  void c;
});

test.serial("down leaves the machine as it found it", async t => {
  const c = cluster();
  await c.deleteNamespace(NS, true, 90000);
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
  for (const r of recorded) t.false(isSame(r), `${r.name} (pid ${r.pid}) stopped`);
});
