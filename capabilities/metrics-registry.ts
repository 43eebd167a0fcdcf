// The Prometheus registry Pepr serves on /metrics, and the product's histograms, counters and
// gauges on it.
//
// Pepr 1.1.4 (node_modules/pepr/src/lib/telemetry/metrics.ts) keeps its prom-client Registry in a
// private field of `metricsCollector` and serves `registry.metrics()` on /metrics
// (src/lib/controller/index.ts #metrics); its collector offers counters, summaries and gauges
// only. To put histograms on that same registry we capture it once: while Pepr's collector
// creates one metric for us (addGauge -> new prom-client Gauge({registers: [registry]}), which
// calls registry.registerMetric(gauge) synchronously), Registry.prototype.registerMetric of the
// prom-client copy Pepr loaded records its receiver; the original method is restored at once.
import { createRequire } from "node:module";
import { metricsCollector } from "pepr";
import type * as PromClient from "prom-client";

/** prom-client as Pepr itself resolves it: the copy whose Registry serves /metrics. */
export const prom: typeof PromClient = createRequire(require.resolve("pepr"))("prom-client");

let captured: PromClient.Registry | undefined;

/** The registry behind Pepr's /metrics (captured on first use). */
export function peprRegistry(): PromClient.Registry {
  if (captured) return captured;
  const proto = prom.Registry.prototype;
  const original = proto.registerMetric;
  proto.registerMetric = function (this: PromClient.Registry, metric) {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the receiver is what we look for
    captured ??= this;
    return original.call(this, metric);
  };
  try {
    // Also useful on its own: pepr_macvlan_build_info{version} 1.
    metricsCollector.addGauge("macvlan_build_info", "pepr-macvlan build", ["version"]);
  } finally {
    proto.registerMetric = original;
  }
  if (!captured) throw new Error("could not find the registry Pepr serves /metrics from");
  metricsCollector.incGauge("macvlan_build_info", {
    version: process.env.npm_package_version ?? "0.1.0",
  });
  return captured;
}

const registers = () => [peprRegistry()];

/** Admission answers in milliseconds to seconds: 2.5 ms … 10 s (the webhook timeout). */
const ADMISSION_BUCKETS = [0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Reserved → Bound waits for the pod to be scheduled and seen: 0.1 s … 10 min. */
const BIND_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
/** Release → reuse is at least the reuse delay (30 s default): 1 s … 1 day. */
const REUSE_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 900, 3600, 21600, 86400];

export function defineMetrics() {
  const r = registers();
  return {
    admission: new prom.Histogram({
      name: "pepr_macvlan_admission_duration_seconds",
      help: "Pod admission (mutation) time in the module, by outcome: leased, denied, skipped (not opted in)",
      labelNames: ["outcome"],
      buckets: ADMISSION_BUCKETS,
      registers: r,
    }),
    bind: new prom.Histogram({
      name: "pepr_macvlan_lease_bind_seconds",
      help: "Time from a lease's reservation (admission) to Bound (the watcher saw its pod)",
      buckets: BIND_BUCKETS,
      registers: r,
    }),
    reuse: new prom.Histogram({
      name: "pepr_macvlan_address_reuse_seconds",
      help: "Time from an address's release to its next lease",
      buckets: REUSE_BUCKETS,
      registers: r,
    }),
    denials: new prom.Counter({
      name: "pepr_macvlan_admission_denials_total",
      help: "Pod admissions refused, by reason",
      labelNames: ["reason"],
      registers: r,
    }),
    repairs: new prom.Counter({
      name: "pepr_macvlan_repairs_total",
      help: "Repairs the watcher's resync made, by kind (the reason of the Event it recorded)",
      labelNames: ["kind"],
      registers: r,
    }),
    conflicts: new prom.Counter({
      name: "pepr_macvlan_cas_conflicts_total",
      help: "Writes refused because the object changed since it was read (decided again), by operation",
      labelNames: ["op"],
      registers: r,
    }),
  };
}
