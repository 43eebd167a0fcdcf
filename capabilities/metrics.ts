// Prometheus metrics on Pepr's /metrics endpoint. Pepr's collector (counters, summaries, gauges)
// carries the original pepr_macvlan_* series; the histograms, labelled counters and per-subnet
// gauges a dashboard aggregates across replicas are prom-client metrics on the same registry
// (./metrics-registry.ts says how it is found). docs/operations.md lists every series.
import { metricsCollector } from "pepr";
import { processRole } from "../lib/mode";
import { watchCaches } from "./watch-caches";
import { defineMetrics, prom, peprRegistry } from "./metrics-registry";
import {
  DENIAL_REASON_NAMES,
  LeaseTimes,
  denialReason,
  repairKinds,
  subnetSamples,
} from "./metrics-leases";
import type { Write } from "../lib/decide/writes";
import type { MacvlanSubnet } from "../crds/types";

const ALLOCATIONS = "macvlan_allocations";
const DENIALS = "macvlan_denials";
const LATENCY = "macvlan_allocation_latency_ms";
const FREE = "macvlan_subnet_free_addresses";
const POOL_HITS = "macvlan_pool_handouts";
const POOL_MISSES = "macvlan_pool_misses";
const ALLOCATED = "macvlan_subnet_allocated_addresses";

metricsCollector.addCounter(ALLOCATIONS, "Addresses leased to pods by admission");
metricsCollector.addCounter(DENIALS, "Pod admissions denied by pepr-macvlan");
metricsCollector.addSummary(LATENCY, "Time to choose and lease an address in pod admission (ms)");
metricsCollector.addCounter(POOL_HITS, "Admissions served from the replica's pre-leased pool");
metricsCollector.addCounter(POOL_MISSES, "Admissions that created their lease (pool off or empty)");
metricsCollector.addGauge(FREE, "Free addresses per subnet (as last counted by the watcher)", [
  "subnet",
]);
metricsCollector.addGauge(ALLOCATED, "Reserved and bound addresses per subnet", ["subnet"]);

export const metrics = defineMetrics();

// The label values known in advance start at 0: a series that first appears at 1 has no increase
// for Prometheus (rate() and increase() would miss the first denial of each reason, the first
// repair, every single conflict), and a panel shows 0 rather than "No data".
for (const outcome of ["leased", "denied", "skipped"]) metrics.admission.zero({ outcome });
for (const reason of DENIAL_REASON_NAMES) metrics.denials.inc({ reason }, 0);
for (const kind of ["LeaseRepaired", "LeaseReclaimed", "MalformedObject"])
  metrics.repairs.inc({ kind }, 0);
for (const op of [
  "createLease",
  "patchLease",
  "setLeaseStatus",
  "deleteLease",
] satisfies Write["op"][])
  metrics.conflicts.inc({ op }, 0);

const seconds = (startedAt: number) => (performance.now() - startedAt) / 1000;

export function recordAllocation(startedAt: number): void {
  metricsCollector.incCounter(ALLOCATIONS);
  metricsCollector.observeEnd(startedAt, LATENCY);
  metrics.admission.observe({ outcome: "leased" }, seconds(startedAt));
}

/** A pod that is not opted in (the fast path every other pod takes). */
export function recordSkip(startedAt: number): void {
  metrics.admission.observe({ outcome: "skipped" }, seconds(startedAt));
}

export function recordPoolUse(hit: boolean): void {
  metricsCollector.incCounter(hit ? POOL_HITS : POOL_MISSES);
}

/** A refused admission: `error` is what was thrown, `message` what the user reads. */
export function recordDenial(startedAt?: number, error?: unknown, message = ""): void {
  metricsCollector.incCounter(DENIALS);
  metrics.denials.inc({ reason: denialReason(error, message) });
  if (startedAt !== undefined) metrics.admission.observe({ outcome: "denied" }, seconds(startedAt));
}

/** A write refused by its precondition (the object changed since it was read). */
export function recordConflict(op: string): void {
  metrics.conflicts.inc({ op });
}

let lastSubnets: MacvlanSubnet[] = [];

/** After each resync: the repairs it made, and the subnets the per-subnet gauges describe. */
export function recordResync(
  snapshot: { subnets: MacvlanSubnet[] },
  plan: { groups: { op: string; reason?: string }[][] },
): void {
  lastSubnets = snapshot.subnets;
  for (const kind of repairKinds(plan.groups)) metrics.repairs.inc({ kind });
}

// Pepr's gauges only increment, so we keep the last value and add the difference.
const lastValue = new Map<string, number>();
function setGauge(name: string, subnet: string, value: number) {
  const key = `${name}/${subnet}`;
  const delta = value - (lastValue.get(key) ?? 0);
  lastValue.set(key, value);
  if (delta !== 0) metricsCollector.incGauge(name, { subnet }, delta);
}

export function recordSubnetCounts(subnet: string, allocated: number, free: bigint): void {
  setGauge(ALLOCATED, subnet, allocated);
  // A /64 does not fit a double exactly; a gauge of that size is only read as "plenty".
  setGauge(FREE, subnet, Number(free));
}

// ---- the watcher's lease times and per-subnet gauges, from its lease cache ----

const times = new LeaseTimes();
watchCaches.leases.onChange((lease, phase, previous) => {
  const t = times.onChange(lease, phase, previous, Date.now());
  if (t.bind !== undefined) metrics.bind.observe(t.bind);
  if (t.reuse !== undefined) metrics.reuse.observe(t.reuse);
});

const samples = () =>
  processRole() === "watcher"
    ? subnetSamples(lastSubnets, watchCaches.leases.list(), new Date())
    : [];

new prom.Gauge({
  name: "pepr_macvlan_subnet_addresses",
  help: "Addresses of each subnet's pool by state: total, allocated (Reserved+Bound), free (watcher)",
  labelNames: ["subnet", "state"],
  registers: [peprRegistry()],
  collect() {
    this.reset();
    for (const s of samples()) {
      this.set({ subnet: s.subnet, state: "total" }, s.total);
      this.set({ subnet: s.subnet, state: "allocated" }, s.allocated);
      this.set({ subnet: s.subnet, state: "free" }, s.free);
    }
  },
});

new prom.Gauge({
  name: "pepr_macvlan_subnet_conflicts",
  help: "Leases of each subnet that should not be: a duplicate IP or MAC, outside the pool, misnamed",
  labelNames: ["subnet"],
  registers: [peprRegistry()],
  collect() {
    this.reset();
    for (const s of samples()) this.set({ subnet: s.subnet }, s.conflicts);
  },
});

new prom.Gauge({
  name: "pepr_macvlan_leases",
  help: "MacvlanLeases of each subnet by phase (watcher)",
  labelNames: ["subnet", "phase"],
  registers: [peprRegistry()],
  collect() {
    this.reset();
    for (const s of samples())
      for (const [phase, n] of Object.entries(s.phases)) this.set({ subnet: s.subnet, phase }, n);
  },
});

/** Milliseconds spent in each named step of one request, for the debug log and the bench. */
export function stepTimer() {
  let last = performance.now();
  const steps: Record<string, number> = {};
  return {
    mark(step: string) {
      const now = performance.now();
      steps[step] = Math.round((now - last) * 100) / 100;
      last = now;
    },
    steps,
  };
}
