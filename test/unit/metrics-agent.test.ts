// The node agent's /metrics and /healthz: every reconcile of the controller is counted (duration,
// outcome, routes, shims, failed steps, per-subnet readiness), served over HTTP.
import test from "ava";
import type { AddressInfo } from "node:net";
import type { MacvlanSubnet } from "../../crds/types";
import { AgentController, type KernelLike } from "../../agent/controller";
import { serveAgentMetrics } from "../../agent/metrics";
import type { KernelState, PlannedStep, StepResult } from "../../agent/types";

class Kernel implements KernelLike {
  fail = false;
  failSteps = false;
  async observe(): Promise<KernelState> {
    if (this.fail) throw new Error("ip: boom");
    return {
      links: [{ name: "eth0", index: 2, mtu: 1500, up: true, addresses: [] }],
      routes: [],
      sysctls: {},
    };
  }
  async apply(steps: PlannedStep[]): Promise<StepResult[]> {
    return steps.map(step => ({
      step,
      outcome: this.failSteps ? "failed" : "ok",
      error: this.failSteps ? "EPERM" : undefined,
    }));
  }
}

const subnet = {
  metadata: { name: "lan", uid: "u", resourceVersion: "1" },
  spec: { master: "eth0", cidr: "198.18.100.0/24" },
} as MacvlanSubnet;
const pod = {
  metadata: {
    name: "p",
    namespace: "ns",
    uid: "uid-p",
    resourceVersion: "1",
    annotations: { "macvlan.dev/ip": "198.18.100.7", "macvlan.dev/subnet": "lan" },
  },
  spec: { nodeName: "n1" },
  status: { phase: "Running" },
};

async function setUp(kernel: Kernel) {
  const controller = new AgentController({ node: "n1", kernel, nodeIPs: ["198.18.0.11"] });
  controller.subnets.replace([subnet]);
  controller.pods.replace([pod]);
  const { metrics } = serveAgentMetrics(controller, { port: 0 });
  return { controller, metrics };
}

test("reconciles are timed and counted; routes, shims and readiness of the last one", async t => {
  const kernel = new Kernel();
  const { controller, metrics } = await setUp(kernel);
  await controller.reconcileOnce();
  kernel.failSteps = true;
  await controller.reconcileOnce();
  kernel.fail = true;
  await t.throwsAsync(() => controller.reconcileOnce(), { message: /boom/ });
  const text = await metrics.registry.metrics();
  t.regex(text, /pepr_macvlan_agent_reconcile_duration_seconds_count 3/);
  t.regex(text, /pepr_macvlan_agent_reconciles_total\{result="ok"\} 1/);
  t.regex(text, /pepr_macvlan_agent_reconciles_total\{result="partial"\} 1/);
  t.regex(text, /pepr_macvlan_agent_reconciles_total\{result="failed"\} 1/);
  t.regex(text, /pepr_macvlan_agent_step_errors_total [1-9]/);
  t.regex(text, /pepr_macvlan_agent_pod_routes 1/);
  t.regex(text, /pepr_macvlan_agent_subnet_ready\{subnet="lan"\} 0/); // its steps failed
  t.regex(text, /pepr_macvlan_agent_last_success_timestamp_seconds \d+/);
});

test("served over HTTP: /metrics, and /healthz once a reconcile succeeded; port 0 is off", async t => {
  const controller = new AgentController({
    node: "n1",
    kernel: new Kernel(),
    nodeIPs: ["198.18.0.11"],
  });
  controller.subnets.replace([subnet]);
  controller.pods.replace([pod]);
  const port = 20000 + Math.floor(Math.random() * 40000);
  const { server } = serveAgentMetrics(controller, { port, host: "127.0.0.1" });
  t.teardown(() => server?.close());
  await new Promise(r => server!.once("listening", r));
  const base = `http://127.0.0.1:${(server!.address() as AddressInfo).port}`;
  t.is((await fetch(`${base}/healthz`)).status, 503);
  await controller.reconcileOnce();
  t.is((await fetch(`${base}/healthz`)).status, 200);
  const res = await fetch(`${base}/metrics`);
  t.is(res.status, 200);
  t.regex(await res.text(), /pepr_macvlan_agent_reconciles_total\{result="ok"\} 1/);
  t.is((await fetch(`${base}/nope`)).status, 404);
  const off = serveAgentMetrics(new AgentController({ node: "n1", kernel: new Kernel() }), {
    port: 0,
  });
  t.is(off.server, undefined);
});
