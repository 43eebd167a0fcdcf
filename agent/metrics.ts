// The node agent's own Prometheus endpoint: reconcile duration and outcome, routes, shims,
// failed steps, per-subnet readiness and the time of the last good reconcile. Its own registry
// (the agent has no Pepr), served over plain HTTP on AGENT_METRICS_PORT (default 9478, 0 = off)
// of the node (the DaemonSet uses hostNetwork). /healthz answers 200 once a reconcile succeeded
// within three resync periods.
import { createServer, Server } from "node:http";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { AgentController, ReconcileReport } from "./controller";

export const DEFAULT_METRICS_PORT = 9478;

export class AgentMetrics {
  readonly registry = new Registry();
  readonly duration = new Histogram({
    name: "pepr_macvlan_agent_reconcile_duration_seconds",
    help: "One agent reconcile: observe the kernel, plan, apply, report",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly reconciles = new Counter({
    name: "pepr_macvlan_agent_reconciles_total",
    help: "Agent reconciles by result: ok, failed (threw), partial (a step failed or a status write)",
    labelNames: ["result"],
    registers: [this.registry],
  });
  readonly stepErrors = new Counter({
    name: "pepr_macvlan_agent_step_errors_total",
    help: "Kernel steps (links, addresses, routes, sysctls) that failed",
    registers: [this.registry],
  });
  readonly routes = new Gauge({
    name: "pepr_macvlan_agent_pod_routes",
    help: "Local macvlan pods the node routes to through its shims (last reconcile)",
    registers: [this.registry],
  });
  readonly shims = new Gauge({
    name: "pepr_macvlan_agent_shims",
    help: "Host shim interfaces the agent keeps (last reconcile)",
    registers: [this.registry],
  });
  readonly ready = new Gauge({
    name: "pepr_macvlan_agent_subnet_ready",
    help: "1 when the subnet is ready on this node (what the agent reports in status.nodes)",
    labelNames: ["subnet"],
    registers: [this.registry],
  });
  readonly lastSuccess = new Gauge({
    name: "pepr_macvlan_agent_last_success_timestamp_seconds",
    help: "When the last reconcile succeeded (unix time)",
    registers: [this.registry],
  });

  /** Records one reconcile's report (or its failure). */
  observe(r: ReconcileReport | undefined, seconds: number, now = Date.now()): void {
    this.duration.observe(seconds);
    if (!r) {
      this.reconciles.inc({ result: "failed" });
      return;
    }
    const failed = r.results.filter(x => x.outcome === "failed").length;
    if (failed) this.stepErrors.inc(failed);
    this.reconciles.inc({ result: failed || r.statusFailures.length ? "partial" : "ok" });
    this.routes.set(r.plan.pods.length);
    this.shims.set(new Set(Object.values(r.readiness).flatMap(x => (x.shim ? [x.shim] : []))).size);
    this.ready.reset();
    for (const [subnet, x] of Object.entries(r.readiness))
      this.ready.set({ subnet }, x.ready ? 1 : 0);
    this.lastSuccess.set(now / 1000);
  }
}

/**
 * Counts every reconcile of `controller` (wrapping its reconcileOnce, which the loop calls) and
 * serves /metrics and /healthz; returns the server (undefined when the port is 0).
 */
export function serveAgentMetrics(
  controller: AgentController,
  o: { port?: number; host?: string; resyncMs?: number; metrics?: AgentMetrics } = {},
): { metrics: AgentMetrics; server?: Server } {
  const metrics = o.metrics ?? new AgentMetrics();
  const reconcile = controller.reconcileOnce.bind(controller);
  controller.reconcileOnce = async () => {
    const t0 = performance.now();
    try {
      const r = await reconcile();
      metrics.observe(r, (performance.now() - t0) / 1000);
      return r;
    } catch (e) {
      metrics.observe(undefined, (performance.now() - t0) / 1000);
      throw e;
    }
  };
  const port = o.port ?? DEFAULT_METRICS_PORT;
  if (port === 0) return { metrics };
  const staleMs = 3 * (o.resyncMs ?? 30_000);
  const server = createServer((req, res) => {
    if (req.url === "/metrics") {
      void metrics.registry.metrics().then(text => {
        res.writeHead(200, { "Content-Type": metrics.registry.contentType });
        res.end(text);
      });
    } else if (req.url === "/healthz") {
      const fresh =
        controller.lastSuccess && Date.now() - controller.lastSuccess.getTime() < staleMs;
      res.writeHead(fresh ? 200 : 503, { "Content-Type": "text/plain" });
      res.end(fresh ? "ok\n" : "no successful reconcile lately\n");
    } else {
      res.writeHead(404).end();
    }
  });
  server.listen(port, o.host ?? "0.0.0.0");
  server.unref();
  return { metrics, server };
}
