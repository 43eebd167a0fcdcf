// Prometheus metrics on Pepr's /metrics endpoint (they appear as pepr_macvlan_*).
// Pepr's collector offers counters, summaries and gauges only; latency is a summary.
import { metricsCollector } from "pepr";

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

export function recordAllocation(startedAt: number): void {
  metricsCollector.incCounter(ALLOCATIONS);
  metricsCollector.observeEnd(startedAt, LATENCY);
}

export function recordPoolUse(hit: boolean): void {
  metricsCollector.incCounter(hit ? POOL_HITS : POOL_MISSES);
}

export function recordDenial(): void {
  metricsCollector.incCounter(DENIALS);
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
