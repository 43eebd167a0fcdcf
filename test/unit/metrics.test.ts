// The module's metrics: on the registry Pepr serves on /metrics (found by reading Pepr's code;
// see capabilities/metrics-registry.ts), with histograms by outcome, labelled counters and the
// per-subnet gauges; and the pure parts that decide what they measure.
import test from "ava";
import { metricsCollector } from "pepr";
import {
  recordAllocation,
  recordConflict,
  recordDenial,
  recordResync,
  recordSkip,
} from "../../capabilities/metrics";
import {
  DENIAL_REASON_NAMES,
  LeaseTimes,
  denialReason,
  repairKinds,
  subnetSamples,
} from "../../capabilities/metrics-leases";
import { IpamError } from "../../lib/ipam";
import { Refusal } from "../../lib/decide/admit";
import { MacvlanLease } from "../../crds/types";
import { NOW, lan, leases } from "./helpers/cli-cluster";

/** What Pepr's /metrics handler sends: its collector's getMetrics(). */
const served = () => metricsCollector.getMetrics();

test("histograms and counters appear on the registry Pepr serves", async t => {
  const started = performance.now() - 20; // 20 ms ago
  recordAllocation(started);
  recordSkip(performance.now());
  recordDenial(performance.now(), new IpamError("Exhausted", "full"), "full");
  recordConflict("patchLease");
  recordResync({ subnets: [] }, { groups: [[{ op: "event", reason: "LeaseRepaired" }]] });
  const text = await served();
  t.regex(text, /# TYPE pepr_macvlan_admission_duration_seconds histogram/);
  // It took at least 20 ms: not in the 10 ms bucket, counted once (no upper bound: a loaded
  // machine may take longer between the two calls).
  t.regex(text, /pepr_macvlan_admission_duration_seconds_bucket\{le="0\.01",outcome="leased"\} 0/);
  t.regex(text, /pepr_macvlan_admission_duration_seconds_count\{outcome="leased"\} 1/);
  t.regex(text, /pepr_macvlan_admission_duration_seconds_count\{outcome="skipped"\} 1/);
  t.regex(text, /pepr_macvlan_admission_duration_seconds_count\{outcome="denied"\} 1/);
  t.regex(text, /pepr_macvlan_admission_denials_total\{reason="Exhausted"\} 1/);
  t.regex(text, /pepr_macvlan_cas_conflicts_total\{op="patchLease"\} 1/);
  t.regex(text, /pepr_macvlan_repairs_total\{kind="LeaseRepaired"\} 1/);
  t.regex(text, /# TYPE pepr_macvlan_lease_bind_seconds histogram/);
  t.regex(text, /# TYPE pepr_macvlan_address_reuse_seconds histogram/);
  t.regex(text, /pepr_macvlan_build_info\{version="[^"]+"\} 1/);
  // Pepr's own series are still there: it is the same registry.
  t.regex(text, /pepr_macvlan_allocations 1/);
});

test("known label values are served at 0 before their first event (rate() sees the first one)", async t => {
  const text = await served();
  t.regex(text, /pepr_macvlan_cas_conflicts_total\{op="deleteLease"\} 0/);
  t.regex(text, /pepr_macvlan_admission_denials_total\{reason="Bypass"\} 0/);
  t.regex(text, /pepr_macvlan_repairs_total\{kind="MalformedObject"\} 0/);
  for (const reason of DENIAL_REASON_NAMES)
    t.regex(text, new RegExp(`pepr_macvlan_admission_denials_total\\{reason="${reason}"\\} \\d`));
  t.true(
    DENIAL_REASON_NAMES.includes("Exhausted") && DENIAL_REASON_NAMES.includes("SubnetMissing"),
  );
});

test("denial reasons: IPAM codes, then the refusal's wording; few distinct labels", t => {
  t.is(denialReason(new IpamError("Cooling", "x"), "x"), "Cooling");
  t.is(
    denialReason(
      undefined,
      'namespace "a" may not use MacvlanSubnet "lan": add it to spec.namespaces',
    ),
    "NamespaceNotAllowed",
  );
  t.is(
    denialReason(undefined, 'MacvlanSubnet "x" (asked for by …) does not exist: create it'),
    "SubnetMissing",
  );
  t.is(
    denialReason(undefined, 'the pod names the managed network "a/macvlan-lan" in k8s…'),
    "Bypass",
  );
  t.is(denialReason(undefined, "pepr-macvlan could not lease an address: 500"), "ApiError");
  t.is(denialReason(undefined, "something new"), "Other");
  // A fixed IP outside the ranges: the IPAM error is re-worded for the annotation, its code kept.
  const outside = new Refusal(
    "macvlan.dev/ip 198.18.200.5: IP … cannot be leased …",
    "OutsidePool",
  );
  t.is(denialReason(outside, outside.message), "OutsidePool");
});

const at = (s: number) => new Date(NOW.getTime() + s * 1000).toISOString();
function lease(
  phase: "Reserved" | "Bound" | "Released" | undefined,
  extra: Partial<MacvlanLease["status"]> = {},
): MacvlanLease {
  return {
    metadata: { name: "lan-198-18-100-10", creationTimestamp: new Date(at(0)) },
    spec: { subnet: "lan", ip: "198.18.100.10", mac: "02:00:00:00:00:10" },
    status: phase ? { phase, ...extra } : undefined,
  };
}

test("Reserved -> Bound time, once per binding; a relist does not count", t => {
  const times = new LeaseTimes();
  const reserved = lease("Reserved", { reservedAt: at(0) });
  const bound = lease("Bound", { reservedAt: at(0) });
  t.deepEqual(times.onChange(reserved, "ADDED", undefined, NOW.getTime()), {});
  t.deepEqual(times.onChange(bound, "MODIFIED", reserved, NOW.getTime() + 1500), { bind: 1.5 });
  t.deepEqual(times.onChange(bound, "MODIFIED", bound, NOW.getTime() + 9000), {});
  t.deepEqual(times.onChange(bound, "ADDED", undefined, NOW.getTime() + 9000), {});
  // A pool lease has no status until handed out: it counts from its creation.
  t.deepEqual(times.onChange(lease("Bound"), "MODIFIED", lease(undefined), NOW.getTime() + 2000), {
    bind: 2,
  });
});

test("release -> reuse time: a new lease under a deleted Released one's name, or a takeover", t => {
  const times = new LeaseTimes();
  const released = lease("Released", { releasedAt: at(0) });
  t.deepEqual(times.onChange(released, "DELETED", undefined, NOW.getTime() + 30_000), {});
  t.deepEqual(times.onChange(lease("Reserved"), "ADDED", undefined, NOW.getTime() + 45_000), {
    reuse: 45,
  });
  t.deepEqual(times.onChange(lease("Reserved"), "ADDED", undefined, NOW.getTime() + 99_000), {});
  t.deepEqual(times.onChange(lease("Reserved"), "MODIFIED", released, NOW.getTime() + 60_000), {
    reuse: 60,
  });
  const small = new LeaseTimes(1);
  small.onChange(released, "DELETED", undefined, 0);
  small.onChange({ ...released, metadata: { name: "other" } }, "DELETED", undefined, 0);
  t.deepEqual(small.onChange(lease("Reserved"), "ADDED", undefined, 0), {}); // forgotten: bounded
});

test("per-subnet samples: the allocator's counts, conflicts and leases by phase", t => {
  const [s] = subnetSamples([lan], leases, NOW);
  t.deepEqual(s, {
    subnet: "lan",
    total: 11,
    allocated: 3,
    free: 8,
    conflicts: 0,
    // Conflict: leases an agent records for an address in use on the LAN (none here).
    phases: { Reserved: 1, Bound: 2, Released: 2, Conflict: 0 },
  });
});

test("repair kinds are the reasons of the resync's Events", t => {
  t.deepEqual(
    repairKinds([
      [{ op: "setLeaseStatus" }, { op: "event", reason: "AddressReleased" }],
      [{ op: "deleteLease" }],
      [{ op: "event", reason: "MalformedObject" }],
    ]),
    ["AddressReleased", "MalformedObject"],
  );
});

test("the watcher's per-subnet gauges, from the last resync's subnets and its lease cache", async t => {
  const { watchCaches } = await import("../../capabilities/watch-caches");
  const before = process.env.PEPR_WATCH_MODE;
  process.env.PEPR_WATCH_MODE = "true";
  try {
    for (const l of leases) watchCaches.leases.upsert(l as never);
    recordResync({ subnets: [lan] }, { groups: [] });
    const text = await served();
    t.regex(text, /pepr_macvlan_subnet_addresses\{subnet="lan",state="total"\} 11/);
    t.regex(text, /pepr_macvlan_subnet_addresses\{subnet="lan",state="allocated"\} 3/);
    t.regex(text, /pepr_macvlan_subnet_addresses\{subnet="lan",state="free"\} 8/);
    t.regex(text, /pepr_macvlan_subnet_conflicts\{subnet="lan"\} 0/);
    t.regex(text, /pepr_macvlan_leases\{subnet="lan",phase="Released"\} 2/);
  } finally {
    process.env.PEPR_WATCH_MODE = before;
    if (before === undefined) delete process.env.PEPR_WATCH_MODE;
  }
});
