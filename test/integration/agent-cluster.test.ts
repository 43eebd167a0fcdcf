// The node agent on the local cluster, deployed as it would be: agent/deploy/agent.yaml (its
// ServiceAccount and least-privilege RBAC, the DaemonSet with downward-API env), run from its image
// by each node's kubelet in the node's network namespace (hostNetwork).
// Multus and the macvlan CNI make net1. Addresses come from a stand-in for the operator (the
// NAD and the pod annotations rendered with lib/render, as the operator writes them), or from
// the real operator (`npx pepr deploy`) with AGENT_TEST_OPERATOR=1.
import anyTest, { type TestFn } from "ava";
import * as path from "node:path";
import { parseAllDocuments } from "yaml";
import { deploy as deployModule, localAgentManifest } from "../../hack/module/deploy";
import { shimName } from "../../agent/plan";
import type { MacvlanSubnet } from "../../crds/types";
import { macFor } from "../../lib/ipam/identity";
import { renderSelection } from "../../lib/render/multus";
import { renderNad } from "../../lib/render/nad";
import {
  httpServer,
  sleep,
  testPod,
  waitFor,
  withCluster,
  type Cluster,
  type Pod,
  getJson,
} from "./helpers";

const test = anyTest as TestFn;
const cluster = withCluster(test, { nodes: 2 });

const ROOT = path.resolve(__dirname, "..", "..");
const NS = "agent-t";
const SHIM = shimName("eth0");
const WITH_OPERATOR = process.env.AGENT_TEST_OPERATOR === "1";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const subnet = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: "macvlan.dev/v1alpha1",
  kind: "MacvlanSubnet",
  metadata: { name },
  spec: { master: "eth0", reuseDelaySeconds: 1, ...spec },
});

const nodeEntries = async (c: Cluster, name: string): Promise<Json[]> =>
  (await getJson(c, ["mvs", name]))?.status?.nodes ?? [];

async function agentRoutes(c: Cluster, node: number): Promise<string[]> {
  const out = await c.execNode(node, ["ip", "-j", "route", "show", "proto", "77"]);
  return (JSON.parse(out.stdout || "[]") as Json[])
    .map(r => `${r.dst} dev ${r.dev} src ${r.prefsrc}`)
    .sort();
}

const hasLink = async (c: Cluster, node: number, name: string) =>
  (await c.execNode(node, ["ip", "link", "show", "dev", name])).code === 0;

const macvlanIP = (p: Pod) => String(p.metadata.annotations?.["macvlan.dev/ip"] ?? "");

/** HTTP GET from a node's network namespace, as a node-local client would. */
async function nodeGet(c: Cluster, node: number, ip: string): Promise<string | undefined> {
  const r = await c.httpGet(`node/pmv-node-${node}`, `http://${ip}:8080/`);
  return r.status === 200 ? r.body.trim() : undefined;
}

/** agent/deploy/agent.yaml as shipped (image, RBAC), with a 5 s resync and info logs. */
function agentManifest(): Json[] {
  const docs = parseAllDocuments(localAgentManifest()).map(d => d.toJS() as Json);
  const ds = docs.find(d => d.kind === "DaemonSet");
  const env = ds.spec.template.spec.containers[0].env as { name: string; value?: string }[];
  const set = (name: string, value: string) => {
    const e = env.find(x => x.name === name);
    if (e) e.value = value;
    else env.push({ name, value });
  };
  set("AGENT_RESYNC_SECONDS", "5");
  set("LOG_LEVEL", "info");
  // Without the operator there are no leases: LAN conflict probing (agent/probe) would report
  // every other pod's address as a foreign host and rewrite the status on its own schedule.
  if (!WITH_OPERATOR) set("AGENT_PROBE", "false");
  return docs;
}

async function agentPods(c: Cluster): Promise<Pod[]> {
  return (await c.listPods("pepr-system", "app.kubernetes.io/name=pepr-macvlan-agent")).filter(
    p => !p.metadata.deletionTimestamp,
  );
}

let p1: Pod, p2: Pod, single: Pod;
let lanSubnet: MacvlanSubnet;

test.before(async () => {
  const c = cluster();
  const lan = subnet("lan", {
    cidr: "198.18.0.0/16",
    gateway: "198.18.0.1",
    ranges: [{ start: "198.18.100.10", end: "198.18.100.60" }],
  });
  if (WITH_OPERATOR) {
    await deployModule({ agent: false });
    await c.apply(lan);
    await waitFor(
      async () => (await getJson(c, ["mvs", "lan"]))?.status?.conditions?.[0]?.status === "True",
      {
        what: "subnet lan Ready",
      },
    );
  } else {
    await c.kubectl(["apply", "-f", path.join(ROOT, "crds")]);
    await c.kubectl([
      "wait",
      "--for=condition=Established",
      "--timeout=60s",
      "crd/macvlansubnets.macvlan.dev",
    ]);
    await c.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: "pepr-system" } });
    await c.apply(lan);
  }
  lanSubnet = (await getJson(c, ["mvs", "lan"])) as MacvlanSubnet;
  await c.createNamespace(NS, { "macvlan.dev/subnet": "lan" });
  if (!WITH_OPERATOR) await c.apply(renderNad(lanSubnet, NS));
});

test.afterEach.always(async t => {
  if (t.passed) return;
  for (const p of await agentPods(cluster()).catch(() => [] as Pod[])) {
    const log = await cluster()
      .podLog("pepr-system", String(p.metadata.name))
      .catch(() => "");
    t.log(
      `--- agent ${p.metadata.name} on ${p.spec.nodeName}\n${log.split("\n").slice(-25).join("\n")}`,
    );
  }
});

/** A macvlan pod; without the operator, annotated the way the operator's mutation would. */
function macvlanPod(
  name: string,
  node: string,
  ip: string,
  o: { singleNic?: boolean; probe?: boolean } = {},
) {
  const annotations: Record<string, string> = o.singleNic
    ? { "macvlan.dev/single-nic": "true" }
    : {};
  if (!WITH_OPERATOR) {
    const mac = macFor("lan", ip);
    const sel = renderSelection(lanSubnet, NS, ip, mac, { singleNic: o.singleNic });
    // Multus wants a JSON list here too (a bare object fails: "cannot unmarshal object").
    if (o.singleNic) annotations["v1.multus-cni.io/default-network"] = JSON.stringify([sel]);
    else annotations["k8s.v1.cni.cncf.io/networks"] = JSON.stringify([sel]);
    Object.assign(annotations, {
      "macvlan.dev/subnet": "lan",
      "macvlan.dev/ip": ip,
      "macvlan.dev/mac": mac,
    });
  }
  return testPod({
    name,
    namespace: NS,
    node,
    command: httpServer(),
    annotations,
    ...(o.probe
      ? { readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1, failureThreshold: 1 } }
      : {}),
  });
}

test.serial(
  "without the agent a node cannot reach its own macvlan pods, and single-NIC probes fail",
  async t => {
    const c = cluster();
    await c.apply([
      macvlanPod("p1", "pmv-node-1", "198.18.100.11"),
      macvlanPod("p2", "pmv-node-2", "198.18.100.12"),
      macvlanPod("single", "pmv-node-1", "198.18.100.13", { singleNic: true, probe: true }),
    ]);
    p1 = await c.waitForPodReady(NS, "p1", { timeoutMs: 90000 });
    p2 = await c.waitForPodReady(NS, "p2", { timeoutMs: 90000 });
    single = await c.waitForPod(NS, "single", p => !!p.status?.podIP, { timeoutMs: 90000 });
    t.is(single.status.podIP, macvlanIP(single), "single-NIC: the pod IP is the macvlan address");
    t.log(
      `p1 ${macvlanIP(p1)} (node 1), p2 ${macvlanIP(p2)} (node 2), single ${macvlanIP(single)} (node 1)`,
    );

    t.false(await c.ping("node/pmv-node-1", macvlanIP(p1)), "node 1 → its own pod p1 fails");
    t.is(await nodeGet(c, 1, macvlanIP(p1)), undefined);
    t.true(
      await c.ping("node/pmv-node-2", macvlanIP(p1)),
      "node 2 → p1 (another node) works over the LAN",
    );
    await sleep(3000);
    t.falsy(
      (await c.getPod(NS, "single"))?.status?.conditions?.find(
        (x: Json) => x.type === "Ready" && x.status === "True",
      ),
    );
  },
);

test.serial(
  "the agent DaemonSet makes node → own pod work and reports per-node readiness",
  async t => {
    const c = cluster();
    const t0 = Date.now();
    await c.apply(agentManifest());
    const pods = await waitFor(
      async () => {
        const l = await agentPods(c);
        return l.length === 2 && l.every(p => p.status?.phase === "Running") && l;
      },
      { what: "two agent pods Running", timeoutMs: 90000 },
    );
    t.deepEqual(pods.map(p => p.spec.nodeName).sort(), ["pmv-node-1", "pmv-node-2"]);

    const entries = await waitFor(
      async () => {
        const e = await nodeEntries(c, "lan");
        return e.length === 2 && e.every(x => x.ready) && e;
      },
      { what: "status.nodes of lan: both nodes ready", timeoutMs: 60000 },
    );
    t.log(
      `agents ready on both nodes ${((Date.now() - t0) / 1000).toFixed(1)} s after the DaemonSet was applied`,
    );
    t.deepEqual(entries.map((e: Json) => [e.node, e.ready, e.shim]).sort(), [
      ["pmv-node-1", true, SHIM],
      ["pmv-node-2", true, SHIM],
    ]);
    t.regex(entries[0].message, /^shim mvshim-[0-9a-f]{8} on eth0, source 198\.18\.0\.1[12]/);
    t.truthy(Date.parse(entries[0].lastUpdateTime));

    await waitFor(async () => (await agentRoutes(c, 1)).length === 2, {
      what: "two routes on node 1",
    });
    t.deepEqual(
      await agentRoutes(c, 1),
      [
        `${macvlanIP(p1)} dev ${SHIM} src 198.18.0.11`,
        `${macvlanIP(single)} dev ${SHIM} src 198.18.0.11`,
      ].sort(),
    );
    t.deepEqual(await agentRoutes(c, 2), [`${macvlanIP(p2)} dev ${SHIM} src 198.18.0.12`]);

    t.true(await c.ping("node/pmv-node-1", macvlanIP(p1)), "node 1 → own pod p1");
    t.is(await nodeGet(c, 1, macvlanIP(p1)), "ok");
    t.is(await nodeGet(c, 2, macvlanIP(p2)), "ok");
    const ready = await c.waitForPodReady(NS, "single", { timeoutMs: 30000 });
    t.truthy(ready, "the kubelet-style probe from the node reaches the single-NIC pod");

    const events = await waitFor(
      async () => {
        const l = await c.events("default", "lan");
        return l.filter((e: Json) => e.reason === "ShimReady").length >= 2 && l;
      },
      { what: "ShimReady events" },
    );
    t.deepEqual(
      [
        ...new Set(
          events.filter((e: Json) => e.reason === "ShimReady").map((e: Json) => e.source?.host),
        ),
      ].sort(),
      ["pmv-node-1", "pmv-node-2"],
    );
  },
);

test.serial(
  "routes follow pods; a hand-deleted route and an agent restart are handled",
  async t => {
    const c = cluster();
    // Someone deletes the route: the periodic resync (5 s here) restores it.
    await c.execNode(1, ["ip", "route", "del", `${macvlanIP(p1)}/32`, "dev", SHIM]);
    t.false(await c.ping("node/pmv-node-1", macvlanIP(p1), { count: 1 }));
    await waitFor(
      async () => (await agentRoutes(c, 1)).some(r => r.startsWith(`${macvlanIP(p1)} `)),
      {
        what: "route restored",
        timeoutMs: 20000,
      },
    );
    t.true(await c.ping("node/pmv-node-1", macvlanIP(p1)));

    // The agent restarts (pod deleted, DaemonSet makes a new one): pods keep access throughout,
    // and the new agent finds nothing to change (status entry not rewritten).
    const before = await nodeEntries(c, "lan");
    const old = (await agentPods(c)).find(p => p.spec.nodeName === "pmv-node-1")!;
    await c.kubectl([
      "-n",
      "pepr-system",
      "delete",
      "pod",
      String(old.metadata.name),
      "--wait=false",
    ]);
    t.true(await c.ping("node/pmv-node-1", macvlanIP(p1)), "access survives the agent going away");
    await waitFor(
      async () => {
        const l = await agentPods(c);
        return l.some(
          p =>
            p.spec.nodeName === "pmv-node-1" &&
            p.metadata.uid !== old.metadata.uid &&
            p.status?.phase === "Running",
        );
      },
      { what: "a new agent on node 1", timeoutMs: 60000 },
    );
    await sleep(8000); // at least one full reconcile of the new agent
    t.deepEqual(
      await nodeEntries(c, "lan"),
      before,
      "status untouched: the new agent had nothing to do",
    );
    t.true(await c.ping("node/pmv-node-1", macvlanIP(p1)));

    // A new pod: its route follows from the watch event, well before the resync.
    const t0 = Date.now();
    await c.apply(macvlanPod("p3", "pmv-node-2", "198.18.100.14"));
    const p3 = await c.waitForPod(NS, "p3", p => !!macvlanIP(p), { timeoutMs: 30000 });
    await waitFor(
      async () => (await agentRoutes(c, 2)).some(r => r.startsWith(`${macvlanIP(p3)} `)),
      {
        what: "route of p3",
        intervalMs: 50,
        timeoutMs: 30000,
      },
    );
    t.log(`new pod → its host route on the node: ${Date.now() - t0} ms (includes kubectl apply)`);
    await c.waitForPodReady(NS, "p3", { timeoutMs: 60000 });
    t.is(await nodeGet(c, 2, macvlanIP(p3)), "ok");

    // The pod goes: its route goes.
    const t1 = Date.now();
    await c.kubectl(["-n", NS, "delete", "pod", "p1", "--wait=false"]);
    await waitFor(
      async () => !(await agentRoutes(c, 1)).some(r => r.startsWith(`${macvlanIP(p1)} `)),
      {
        what: "route of p1 removed",
        timeoutMs: 30000,
        intervalMs: 50,
      },
    );
    t.log(`pod deleted → its host route gone: ${Date.now() - t1} ms`);
    t.deepEqual(await agentRoutes(c, 1), [`${macvlanIP(single)} dev ${SHIM} src 198.18.0.11`]);
  },
);

test.serial(
  "a VLAN parent the nodes cannot make: that subnet reports it per node, the other stays ready",
  async t => {
    const c = cluster();
    await c.apply(subnet("vlan100", { vlan: 100, cidr: "2001:db8:100::/64" }));
    const entries = await waitFor(
      async () => {
        const e = await nodeEntries(c, "vlan100");
        return e.length === 2 && e;
      },
      { what: "status.nodes of vlan100", timeoutMs: 60000 },
    );
    for (const e of entries) {
      t.false(e.ready);
      t.regex(
        e.message,
        /^parent eth0\.100 is missing and could not be created \(VLAN 100 on eth0\): .*Unknown device type/,
      );
    }
    t.log(entries[0].message);
    t.true((await nodeEntries(c, "lan")).every((e: Json) => e.ready));
    t.is(await nodeGet(c, 2, macvlanIP(p2)), "ok");
    const warn = await waitFor(
      async () =>
        (await c.events("default", "vlan100")).filter((e: Json) => e.reason === "ParentMissing"),
      {
        what: "ParentMissing events",
      },
    );
    t.true(warn.length >= 1);
    t.is(warn[0].type, "Warning");
    await c.kubectl(["delete", "mvs", "vlan100", "--wait=true", "--timeout=60s"]);
  },
);

test.serial(
  "when the subnets are gone, the shims go; nothing else on the node is touched",
  async t => {
    const c = cluster();
    const linksBefore = async (n: number) =>
      (JSON.parse((await c.execNode(n, ["ip", "-j", "link", "show"])).stdout) as Json[])
        .map(l => l.ifname as string)
        .filter(n => n !== SHIM && !n.startsWith("veth"))
        .sort();
    const before = [await linksBefore(1), await linksBefore(2)];
    await c.deleteNamespace(NS, true);
    await c.kubectl(["delete", "mvs", "lan", "--wait=true", "--timeout=90s"]);
    await waitFor(async () => !(await hasLink(c, 1, SHIM)) && !(await hasLink(c, 2, SHIM)), {
      what: "shims removed",
      timeoutMs: 30000,
    });
    t.deepEqual(await agentRoutes(c, 1), []);
    t.deepEqual(await agentRoutes(c, 2), []);
    t.deepEqual([await linksBefore(1), await linksBefore(2)], before);
    // Default and pod-CIDR routes of the cluster are still there.
    const r = (await c.execNode(1, ["ip", "route", "show"])).stdout;
    t.regex(r, /default via 198\.18\.0\.1/);
    t.regex(r, /198\.19\.2\.0\/24 via 198\.18\.0\.12/);
    await c.kubectl(["delete", "-f", "-"], {
      input: JSON.stringify({ apiVersion: "v1", kind: "List", items: agentManifest() }),
    });
  },
);
