// IPAM engine benchmark: npx tsx bench/ipam.bench.ts  (about 20 s on 2 cores)
// Allocation cost at 0 / 50 / 99 % fill with a fragmented free pool, rebuild time from
// 65,000 leases, and heap bytes per lease.
import { performance } from "node:perf_hooks";
import v8 from "node:v8";
import vm from "node:vm";
import { SubnetAllocator, type AllocatorSpec, type LeaseRecord } from "../lib/ipam";

const T0 = Date.parse("2025-01-01T00:00:00Z");

// Deterministic PRNG (mulberry32), so runs are comparable.
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle<T>(xs: T[], rand: () => number): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
  return xs;
}

/** global.gc when node runs with --expose-gc, else the same function obtained at runtime. */
function findGc(): (() => void) | undefined {
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === "function") return g;
  try {
    v8.setFlagsFromString("--expose-gc");
    return vm.runInNewContext("gc") as () => void;
  } catch {
    return undefined;
  }
}

/** Runs `op` in a loop for ~budgetMs; returns µs per call. */
function timeLoop(op: () => void, budgetMs = 250): number {
  for (let i = 0; i < 2000; i++) op(); // warm-up
  let n = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < budgetMs) {
    for (let i = 0; i < 500; i++) op();
    n += 500;
    elapsed = performance.now() - start;
  }
  return (elapsed * 1000) / n;
}

interface PoolCase {
  name: string;
  spec: AllocatorSpec;
  /** Can the pool be filled (a /64 cannot)? */
  fillable: boolean;
}

const pools: PoolCase[] = [
  { name: "IPv4 /24", spec: { cidr: "198.18.100.0/24", gateway: "198.18.100.1" }, fillable: true },
  { name: "IPv4 /16", spec: { cidr: "198.18.0.0/16", gateway: "198.18.0.1" }, fillable: true },
  {
    name: "IPv6 /64 (2^16 range)",
    spec: {
      cidr: "2001:db8:0:64::/64",
      gateway: "2001:db8:0:64::1",
      ranges: [{ start: "2001:db8:0:64::1:0", end: "2001:db8:0:64::1:ffff" }],
    },
    fillable: true,
  },
  {
    name: "IPv6 /64 (whole)",
    spec: { cidr: "2001:db8:0:64::/64", gateway: "2001:db8:0:64::1" },
    fillable: false,
  },
];

/**
 * An allocator at `fill` of its pool with a fragmented free set: allocate everything, then
 * delete random leases (forget) until the target fill is reached.
 */
function filled(c: PoolCase, fill: number, reuseDelaySeconds: number, seed: number) {
  const a = new SubnetAllocator("bench", { ...c.spec, reuseDelaySeconds });
  const held: string[] = [];
  if (!c.fillable) return { a, held };
  const total = Number(a.total);
  for (let i = 0; i < total; i++) held.push(a.next(T0));
  shuffle(held, rng(seed));
  const keep = Math.floor(total * fill);
  for (const ip of held.splice(keep)) a.forget(ip);
  return { a, held };
}

interface Row {
  pool: string;
  fill: string;
  next: number;
  pairRelease: number;
  pairForget: number;
  fragments: number;
}

function measure(c: PoolCase, fill: number): Row {
  const rand = rng(42);
  // (1) next() alone: take a batch from the fragmented pool (timed), give it back (untimed).
  let { a } = filled(c, fill, 30, 1);
  const fragments = a.freeIntervals;
  const batch = Math.max(1, Math.min(1000, Number(a.free) - 1));
  const taken: string[] = [];
  let n = 0;
  let spent = 0;
  const begin = performance.now();
  while (performance.now() - begin < 300) {
    const t = performance.now();
    for (let i = 0; i < batch; i++) taken.push(a.next(T0));
    spent += performance.now() - t;
    n += batch;
    for (const ip of taken) a.forget(ip);
    taken.length = 0;
  }
  const next = (spent * 1000) / n;

  // (2) churn at constant fill: next() + release(random held IP); delay 0 so released
  // addresses come back through the least-recently-released queue.
  let now = T0;
  let s = filled(c, fill, 0, 2);
  a = s.a;
  let held = s.held;
  if (held.length === 0) held.push(a.next(now));
  const pairRelease = timeLoop(() => {
    now += 1;
    const ip = a.next(now);
    const i = Math.floor(rand() * held.length);
    a.release(held[i], now);
    held[i] = ip;
  });

  // (3) churn with lease deletion: next() + forget(random held IP), which returns the
  // address to the (fragmented) free interval set.
  s = filled(c, fill, 30, 3);
  a = s.a;
  held = s.held;
  if (held.length === 0) held.push(a.next(now));
  const pairForget = timeLoop(() => {
    const ip = a.next(now);
    const i = Math.floor(rand() * held.length);
    a.forget(held[i]);
    held[i] = ip;
  });
  return {
    pool: c.name,
    fill: `${Math.round(fill * 100)} %`,
    next,
    pairRelease,
    pairForget,
    fragments,
  };
}

function leasesFor(
  spec: AllocatorSpec,
  count: number,
  sparseV6: boolean,
  seed: number,
): LeaseRecord[] {
  const rand = rng(seed);
  const a = new SubnetAllocator("bench", spec);
  let ips: string[];
  if (sparseV6) {
    // Random addresses across the whole /64: every lease is its own hole in the free set.
    const set = new Set<string>();
    while (set.size < count) {
      const hi = BigInt(Math.floor(rand() * 2 ** 32));
      const lo = BigInt(Math.floor(rand() * 2 ** 32));
      const v = 0x20010db8000000640000000000000000n | (hi << 32n) | lo;
      const g = Array.from({ length: 8 }, (_, i) =>
        ((v >> BigInt(112 - 16 * i)) & 0xffffn).toString(16),
      );
      set.add(g.join(":"));
    }
    ips = [...set];
  } else {
    ips = shuffle(
      Array.from({ length: Number(a.total) }, () => a.next(T0)),
      rand,
    ).slice(0, count);
  }
  return ips.map((ip, i) =>
    i % 13 === 0
      ? {
          ip,
          phase: "Released",
          releasedAt: new Date(T0 - Math.floor(rand() * 60_000)).toISOString(),
        }
      : { ip, phase: i % 2 ? "Bound" : "Reserved" },
  );
}

function rebuildCase(
  name: string,
  spec: AllocatorSpec,
  sparseV6: boolean,
  gc: (() => void) | undefined,
) {
  const leases = leasesFor(spec, 65_000, sparseV6, 7);
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const a = new SubnetAllocator("bench", spec);
    const t = performance.now();
    a.rebuild(leases, T0);
    times.push(performance.now() - t);
  }
  times.sort((x, y) => x - y);
  let bytes: number | undefined;
  let keep: SubnetAllocator | undefined;
  if (gc) {
    gc();
    gc();
    const before = process.memoryUsage().heapUsed;
    keep = new SubnetAllocator("bench", spec);
    keep.rebuild(leases, T0);
    gc();
    gc();
    bytes = (process.memoryUsage().heapUsed - before) / leases.length;
  }
  return { name, ms: times[1], bytes, fragments: keep?.freeIntervals };
}

function main() {
  const started = performance.now();
  const gc = findGc();
  const fmt = (us: number) => (us < 10 ? us.toFixed(2) : us.toFixed(1)).padStart(8);
  const rate = (us: number) =>
    Math.round(1e6 / us)
      .toLocaleString("en-US")
      .padStart(11);

  console.log(`IPAM engine benchmark (node ${process.version}, ${process.arch})\n`);
  console.log(
    "pool                    fill   free-intervals   next() µs   next()/s    next+release µs   pairs/s   next+forget µs   pairs/s",
  );
  console.log("-".repeat(121));
  for (const c of pools) {
    for (const fill of c.fillable ? [0, 0.5, 0.99] : [0]) {
      const r = measure(c, fill);
      console.log(
        `${r.pool.padEnd(22)} ${r.fill.padStart(5)}   ${String(r.fragments).padStart(14)}   ${fmt(r.next)}  ${rate(r.next)}   ${fmt(r.pairRelease)}         ${rate(r.pairRelease)}  ${fmt(r.pairForget)}        ${rate(r.pairForget)}`,
      );
    }
    if (!c.fillable)
      console.log(
        `${c.name.padEnd(22)}  50/99 %  n/a: 2^64 addresses cannot be leased; see the 2^16 range rows`,
      );
  }

  console.log("\nrebuild from 65,000 leases (1 in 13 Released, median of 3)");
  const rebuilds = [
    rebuildCase("IPv4 /16 (99 % full)", pools[1].spec, false, gc),
    rebuildCase("IPv6 /64 (random, sparse)", pools[3].spec, true, gc),
  ];
  for (const r of rebuilds) {
    const mem =
      r.bytes === undefined
        ? "heap/lease: n/a (no gc available; run node with --expose-gc)"
        : `heap/lease: ${Math.round(r.bytes)} bytes (free intervals after: ${r.fragments})`;
    console.log(`  ${r.name.padEnd(28)} ${r.ms.toFixed(1).padStart(7)} ms   ${mem}`);
  }
  if (!gc) console.log("  (global.gc unavailable and could not be enabled at runtime)");
  console.log(`\ntotal bench time ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

main();
