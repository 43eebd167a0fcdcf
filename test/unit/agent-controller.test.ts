// Node agent control loop and status reporting, with a fake kernel and a fake apiserver.
import test from "ava";
import type { Operation } from "kubernetes-fluent-client";
import type { MacvlanSubnet, NodeReadiness } from "../../crds/types";
import { AgentController, Cache, type KernelLike } from "../../agent/controller";
import type { SubnetReadiness } from "../../agent/plan";
import { statusPatch, StatusReporter, type AgentEvent, type StatusApi } from "../../agent/status";
import type { KernelState, PlannedStep, StepResult } from "../../agent/types";

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));

class FakeKernel implements KernelLike {
  observes = 0;
  applies = 0;
  active = 0;
  maxActive = 0;
  applied: PlannedStep[][] = [];
  fail = false;
  constructor(private readonly delayMs = 20) {}
  async observe(): Promise<KernelState> {
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    this.observes++;
    await sleep(this.delayMs);
    this.active--;
    if (this.fail) throw new Error("ip: boom");
    return {
      links: [{ name: "eth0", index: 2, mtu: 1500, up: true, addresses: [] }],
      routes: [],
      sysctls: {},
    };
  }
  async apply(steps: PlannedStep[]): Promise<StepResult[]> {
    this.applies++;
    this.applied.push(steps);
    return steps.map(step => ({ step, outcome: "ok" }));
  }
}

const subnet = (name: string, rv = "1", status?: MacvlanSubnet["status"]): MacvlanSubnet =>
  ({
    apiVersion: "macvlan.dev/v1alpha1",
    kind: "MacvlanSubnet",
    metadata: { name, uid: `uid-${name}`, resourceVersion: rv },
    spec: { master: "eth0", cidr: "198.18.100.0/24" },
    status,
  }) as MacvlanSubnet;

const pod = (name: string, ip: string, rv = "1") => ({
  metadata: {
    name,
    namespace: "ns",
    uid: `uid-${name}`,
    resourceVersion: rv,
    annotations: { "macvlan.dev/ip": ip, "macvlan.dev/subnet": "lan" },
  },
  spec: { nodeName: "n1" },
  status: { phase: "Running" },
});

function controller(
  k: KernelLike,
  o: Partial<ConstructorParameters<typeof AgentController>[0]> = {},
) {
  return new AgentController({
    node: "n1",
    kernel: k,
    debounceMs: 10,
    resyncMs: 60_000,
    retryMs: 30,
    ...o,
  });
}

async function until(cond: () => boolean, ms = 2000) {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error("timed out");
    await sleep(5);
  }
}

// ---------- cache ----------

test("cache keeps the newest resourceVersion and forgets deleted objects", t => {
  const c = new Cache<ReturnType<typeof pod>>();
  t.true(c.apply("ADDED", pod("a", "198.18.100.5", "5")));
  t.false(c.apply("MODIFIED", pod("a", "198.18.100.6", "4")), "older event ignored");
  t.false(c.apply("MODIFIED", pod("a", "198.18.100.5", "5")), "same version is no change");
  t.is(c.values()[0].metadata.annotations["macvlan.dev/ip"], "198.18.100.5");
  t.true(c.apply("DELETED", pod("a", "198.18.100.5", "6")));
  t.deepEqual(c.values(), []);
  t.false(c.synced);
  t.true(c.replace([pod("b", "198.18.100.7")]));
  t.false(c.replace([pod("b", "198.18.100.7")]), "same list, no change");
  t.true(c.synced);
});

// ---------- loop ----------

test("nothing reconciles before both lists arrived (an empty cache is not 'no subnets')", async t => {
  const k = new FakeKernel();
  const c = controller(k);
  c.start();
  c.onSubnetEvent("ADDED", subnet("lan"));
  c.onSubnetList([subnet("lan")]);
  await sleep(60);
  t.is(k.observes, 0);
  c.onPodList([]);
  await until(() => k.observes === 1);
  await c.stop();
  t.pass();
});

test("a burst of events coalesces, runs never overlap, a trigger during a run gives one more run", async t => {
  const k = new FakeKernel(40);
  const c = controller(k);
  c.onSubnetList([subnet("lan")]);
  c.onPodList([]);
  c.start();
  for (let i = 0; i < 50; i++) c.onPodEvent("ADDED", pod(`p${i}`, `198.18.100.${i + 2}`));
  await until(() => k.observes >= 1);
  const during = k.observes;
  // Events while the first run is in flight.
  for (let i = 50; i < 60; i++) c.onPodEvent("ADDED", pod(`p${i}`, `198.18.100.${i + 2}`));
  await until(() => !k.active && k.observes === during + 1, 3000);
  await sleep(120);
  t.is(k.maxActive, 1, "never two reconciles at once");
  t.is(k.observes, during + 1, "the events during the run gave exactly one more run");
  t.true(during <= 2);
  // The last run saw all 60 pods.
  const routes = k.applied.at(-1)!.filter(s => s.action.op === "replaceRoute");
  t.is(c.lastReport?.plan.pods.length, 60);
  t.true(routes.length > 0);
  await c.stop();
});

test("periodic resync reconciles without events", async t => {
  const k = new FakeKernel(1);
  const c = controller(k, { resyncMs: 40 });
  c.onSubnetList([]);
  c.onPodList([]);
  c.start();
  await until(() => k.observes >= 3, 3000);
  await c.stop();
  const n = k.observes;
  await sleep(100);
  t.is(k.observes, n, "stop() stops the loop");
});

test("a failing reconcile is retried after retryMs", async t => {
  const k = new FakeKernel(1);
  k.fail = true;
  const c = controller(k);
  c.onSubnetList([]);
  c.onPodList([]);
  c.start();
  await until(() => k.observes >= 3, 3000);
  k.fail = false;
  await until(() => c.lastReport !== undefined, 3000);
  await c.stop();
  t.truthy(c.lastError);
});

test("dry-run plans but never applies", async t => {
  const k = new FakeKernel(1);
  const c = controller(k, { dryRun: true });
  c.onSubnetList([subnet("lan")]);
  c.onPodList([pod("a", "198.18.100.5")]);
  const r = await c.reconcileOnce();
  t.true(r.plan.steps.length > 0);
  t.is(k.applies, 0);
});

// ---------- status ----------

const entry = (node: string, ready = true, message = "ok"): NodeReadiness => ({
  node,
  ready,
  message,
  lastUpdateTime: "2025-01-01T00:00:00.000Z",
});

test("status patch: replace own entry under a test on its node name", t => {
  const s = subnet("lan", "7", { nodes: [entry("n0"), entry("n1", false, "old")] });
  t.deepEqual(statusPatch(s, entry("n1", true, "new")), [
    { op: "test", path: "/status/nodes/1/node", value: "n1" },
    { op: "replace", path: "/status/nodes/1", value: entry("n1", true, "new") },
  ]);
  t.is(
    statusPatch(s, { ...entry("n0"), lastUpdateTime: "2030-01-01T00:00:00Z" }),
    undefined,
    "unchanged apart from time",
  );
});

test("status patch: append when absent, write under resourceVersion when there is no list or a duplicate", t => {
  t.deepEqual(statusPatch(subnet("lan", "7", { nodes: [entry("n0")] }), entry("n1")), [
    { op: "add", path: "/status/nodes/-", value: entry("n1") },
  ]);
  t.deepEqual(statusPatch(subnet("lan", "7", { allocated: 3 }), entry("n1")), [
    { op: "test", path: "/metadata/resourceVersion", value: "7" },
    { op: "add", path: "/status/nodes", value: [entry("n1")] },
  ]);
  t.deepEqual(statusPatch(subnet("lan", "7"), entry("n1")), [
    { op: "test", path: "/metadata/resourceVersion", value: "7" },
    { op: "add", path: "/status", value: { nodes: [entry("n1")] } },
  ]);
  t.deepEqual(
    statusPatch(
      subnet("lan", "8", { nodes: [entry("n1"), entry("n0"), entry("n1")] }),
      entry("n1", false),
    ),
    [
      { op: "test", path: "/metadata/resourceVersion", value: "8" },
      { op: "add", path: "/status/nodes", value: [entry("n0"), entry("n1", false)] },
    ],
  );
});

/** A tiny apiserver: JSON patch with test ops on one object, bumping resourceVersion. */
class FakeApi implements StatusApi {
  obj: MacvlanSubnet;
  patches = 0;
  conflicts = 0;
  events: AgentEvent[] = [];
  /** Runs between a client's GET and its PATCH, to simulate another writer. */
  interleave?: () => void;
  constructor(o: MacvlanSubnet) {
    this.obj = structuredClone(o);
  }
  async getSubnet(): Promise<MacvlanSubnet> {
    const copy = structuredClone(this.obj);
    const f = this.interleave;
    this.interleave = undefined;
    f?.();
    return copy;
  }
  async patchSubnetStatus(_name: string, ops: Operation[]): Promise<void> {
    const doc = structuredClone(this.obj) as unknown as Record<string, unknown>;
    for (const op of ops) {
      const parts = op.path.split("/").slice(1);
      const last = parts.pop()!;
      let parent = doc as Record<string, unknown> | unknown[];
      for (const p of parts)
        parent = (parent as Record<string, unknown>)[p] as Record<string, unknown>;
      if (parent === undefined) throw { status: 422, data: { message: `no path ${op.path}` } };
      const cur = Array.isArray(parent)
        ? parent[Number(last)]
        : (parent as Record<string, unknown>)[last];
      if (op.op === "test") {
        if (JSON.stringify(cur) !== JSON.stringify(op.value)) {
          this.conflicts++;
          throw { status: 422, data: { message: "test failed" } };
        }
      } else if (op.op === "add" && Array.isArray(parent) && last === "-") parent.push(op.value);
      else if (op.op === "add" || op.op === "replace") {
        if (Array.isArray(parent)) parent[Number(last)] = op.value;
        else (parent as Record<string, unknown>)[last] = op.value;
      } else throw new Error(`unsupported ${op.op}`);
    }
    const m = doc.metadata as { resourceVersion: string };
    m.resourceVersion = String(Number(m.resourceVersion) + 1);
    this.obj = doc as unknown as MacvlanSubnet;
    this.patches++;
  }
  async createEvent(e: AgentEvent): Promise<void> {
    this.events.push(e);
  }
}

const ready: SubnetReadiness = {
  ready: true,
  reason: "ShimReady",
  shim: "mvshim-1",
  message: "shim mvshim-1 on eth0",
};
const broken: SubnetReadiness = {
  ready: false,
  reason: "ParentMissing",
  message: "parent eth0.100 is missing",
};

test("reporter writes its entry, keeps other nodes', and is quiet when nothing changed", async t => {
  const api = new FakeApi(subnet("lan", "1", { allocated: 2, nodes: [entry("n0")] }));
  const r = new StatusReporter({ node: "n1", api, now: () => new Date("2025-02-02T00:00:00Z") });
  t.deepEqual(await r.report({ lan: ready }, [api.obj]), []);
  t.deepEqual(api.obj.status?.nodes, [
    entry("n0"),
    {
      node: "n1",
      ready: true,
      shim: "mvshim-1",
      message: "shim mvshim-1 on eth0",
      lastUpdateTime: "2025-02-02T00:00:00.000Z",
    },
  ]);
  t.is(api.obj.status?.allocated, 2);
  t.deepEqual(
    api.events.map(e => [e.type, e.reason]),
    [["Normal", "ShimReady"]],
  );
  await r.report({ lan: ready }, [api.obj]);
  t.is(api.patches, 1, "no write when the entry already says the same");
  t.is(api.events.length, 1, "no event without a transition");
  await r.report({ lan: broken }, [api.obj]);
  t.is(api.obj.status?.nodes?.[1].ready, false);
  t.deepEqual(api.events.at(-1)?.reason, "ParentMissing");
  t.is(api.events.at(-1)?.type, "Warning");
});

test("two agents writing at the same time never drop each other's entry (compare-and-swap)", async t => {
  const api = new FakeApi(subnet("lan", "1"));
  const a = new StatusReporter({ node: "n1", api });
  const b = new StatusReporter({ node: "n2", api });
  // n2 creates the list between n1's read and n1's write: n1's resourceVersion test fails.
  api.interleave = () => {
    api.obj = {
      ...api.obj,
      metadata: { ...api.obj.metadata, resourceVersion: "2" },
      status: { nodes: [entry("n2")] },
    } as MacvlanSubnet;
  };
  await a.report({ lan: ready }, [api.obj]);
  t.true(api.conflicts >= 1);
  t.deepEqual(
    api.obj.status?.nodes?.map(n => n.node),
    ["n2", "n1"],
  );
  // n1 replaces its entry while n0 is removed by someone else: the index test fails, retried.
  api.interleave = () => {
    api.obj = { ...api.obj, status: { nodes: [api.obj.status!.nodes![1]] } } as MacvlanSubnet;
  };
  await b.report({ lan: broken }, [api.obj]);
  t.deepEqual(
    api.obj.status?.nodes?.map(n => [n.node, n.ready]),
    [
      ["n1", true],
      ["n2", false],
    ],
  );
});

test("on start the reporter stays quiet when the status already shows the same", async t => {
  const existing = {
    node: "n1",
    ready: true,
    shim: "mvshim-1",
    message: "shim mvshim-1 on eth0",
    lastUpdateTime: "x",
  };
  const api = new FakeApi(subnet("lan", "1", { nodes: [existing] }));
  const r = new StatusReporter({ node: "n1", api });
  await r.report({ lan: ready }, [api.obj]);
  t.is(api.patches, 0);
  t.is(api.events.length, 0);
});

test("a status write that keeps failing is reported back, not thrown", async t => {
  const api = new FakeApi(subnet("lan", "1"));
  api.patchSubnetStatus = async () => {
    throw { status: 400, statusText: "fetch failed" };
  };
  const r = new StatusReporter({ node: "n1", api });
  t.deepEqual(await r.report({ lan: ready }, [api.obj]), ["lan"]);
});
