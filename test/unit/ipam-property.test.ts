// Model-based property test: random allocate / release / forget / markAllocated / rebuild
// sequences on small random subnets, with a fake clock, checked step by step against a
// plain model (a Map of leases, plus the release times of addresses whose lease is gone)
// and a brute-force usable set.
import test from "ava";
import fc from "fast-check";
import {
  IpamError,
  SubnetAllocator,
  bigIntToIp,
  ipToBigInt,
  type AllocatorSpec,
  type LeaseRecord,
} from "../../lib/ipam";

/** Which address an op targets: a held lease, any lease, or any offset (often outside). */
type Pick = "held" | "lease" | "any";
const pickArb = fc.constantFrom<Pick>("held", "lease", "any");

type Op =
  | { k: "next" }
  | { k: "alloc"; o: number }
  | { k: "from"; os: number[] }
  | { k: "release"; o: number; pick: Pick; back: number }
  | { k: "forget"; o: number; pick: Pick }
  | { k: "mark"; o: number }
  | { k: "tick"; s: number }
  | { k: "rebuild" };

const specArb = fc
  .record({
    v6: fc.boolean(),
    hostBits: fc.integer({ min: 0, max: 5 }),
    gw: fc.option(fc.nat(31)),
    range: fc.option(fc.tuple(fc.nat(31), fc.nat(31))),
    exclude: fc.array(fc.nat(31), { maxLength: 3 }),
    delay: fc.constantFrom(0, 1, 5),
  })
  .map(r => {
    const size = 1 << r.hostBits;
    const fam = r.v6 ? 6 : 4;
    const base = r.v6 ? ipToBigInt("2001:db8:0:64::40") : ipToBigInt("198.18.100.64");
    // Offsets up to 2*size, so that some addresses lie outside the CIDR.
    const at = (o: number) => bigIntToIp(fam, base + BigInt(o));
    const spec: AllocatorSpec = {
      cidr: `${at(0)}/${(r.v6 ? 128 : 32) - r.hostBits}`,
      gateway: r.gw === null ? undefined : at(r.gw % size),
      ranges:
        r.range === null
          ? undefined
          : [{ start: at(Math.min(...r.range) % size), end: at(Math.max(...r.range) % size) }],
      exclude: r.exclude.map(o => at(o % size)),
      reuseDelaySeconds: r.delay,
    };
    if (r.range !== null && Math.min(...r.range) % size > Math.max(...r.range) % size)
      spec.ranges = undefined;
    const usable = new Set<string>();
    for (let o = 0; o < size; o++) {
      const [lo, hi] = spec.ranges
        ? [Math.min(...r.range!) % size, Math.max(...r.range!) % size]
        : [0, size - 1];
      if (o < lo || o > hi) continue;
      if (fam === 4 && size >= 4 && (o === 0 || o === size - 1)) continue;
      if (fam === 6 && size >= 4 && o === 0) continue; // subnet-router anycast
      if (spec.gateway === at(o) || spec.exclude!.includes(at(o))) continue;
      usable.add(at(o));
    }
    return { spec, at, size, usable, delayMs: r.delay * 1000 };
  });

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.constant<Op>({ k: "next" }) },
  { weight: 2, arbitrary: fc.nat(63).map<Op>(o => ({ k: "alloc", o })) },
  {
    weight: 1,
    arbitrary: fc
      .array(fc.nat(40), { minLength: 1, maxLength: 4 })
      .map<Op>(os => ({ k: "from", os })),
  },
  {
    weight: 4,
    // `back`: the release is reported late, with the lease's earlier releasedAt.
    arbitrary: fc
      .tuple(fc.nat(63), pickArb, fc.oneof(fc.constant(0), fc.nat(3000)))
      .map<Op>(([o, pick, back]) => ({ k: "release", o, pick, back })),
  },
  {
    weight: 2,
    arbitrary: fc.tuple(fc.nat(63), pickArb).map<Op>(([o, pick]) => ({ k: "forget", o, pick })),
  },
  { weight: 1, arbitrary: fc.nat(63).map<Op>(o => ({ k: "mark", o })) },
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 4000 }).map<Op>(s => ({ k: "tick", s })) },
  { weight: 1, arbitrary: fc.constant<Op>({ k: "rebuild" }) },
);

interface Lease {
  released: boolean;
  /** Released: the release time; held: the last release time known before it was taken. */
  at?: number;
}

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
    return "ok";
  } catch (e) {
    if (e instanceof IpamError) return e.code;
    throw e;
  }
};

test("allocator never double-allocates, never leaves the pool, never loses an address", t => {
  fc.assert(
    fc.property(
      specArb,
      fc.array(opArb, { maxLength: 120 }),
      ({ spec, at, usable, delayMs }, ops) => {
        let now = Date.parse("2025-01-01T00:00:00Z");
        let a = new SubnetAllocator("prop", spec);
        const leases = new Map<string, Lease>(); // inside the usable set
        const recycled = new Map<string, number>(); // no lease, released at
        const outside = new Set<string>(); // Reserved/Bound leases outside it
        const cmp = (x: string, y: string) => (ipToBigInt(x) < ipToBigInt(y) ? -1 : 1);
        const fresh = () =>
          [...usable].filter(ip => !leases.has(ip) && !recycled.has(ip)).sort(cmp);
        const isCooled = (l: Lease | undefined) => !!l?.released && l.at! + delayMs <= now;
        /** Reusable now: recycled, or Released past the delay; with the release time. */
        const reusable = (): [string, number][] => [
          ...recycled,
          ...[...leases]
            .filter(([, l]) => isCooled(l))
            .map(([ip, l]): [string, number] => [ip, l.at!]),
        ];
        const held = () => [...leases].filter(([, l]) => !l.released).map(([ip]) => ip);
        const check = (cond: boolean, what: string) => {
          if (!cond) throw new Error(`${what} (ops: ${JSON.stringify(ops)})`);
        };
        /** The last release time known for a usable address without a held lease. */
        const history = (ip: string) => {
          const l = leases.get(ip);
          return l ? l.at : recycled.get(ip);
        };
        const take = (ip: string) => {
          leases.set(ip, { released: false, at: history(ip) });
          recycled.delete(ip);
        };
        const pick = (o: number, p: Pick) => {
          const from = p === "held" ? held() : p === "lease" ? [...leases.keys()] : [];
          return from.length ? from[o % from.length] : at(o);
        };

        for (const op of ops) {
          switch (op.k) {
            case "next": {
              const f = fresh();
              const c = reusable();
              if (f.length) {
                check(a.next(now) === f[0], "next takes the lowest fresh address");
                take(f[0]);
              } else if (c.length) {
                const minAt = Math.min(...c.map(([, t]) => t));
                const ip = a.next(now);
                check(
                  c.some(([cip, t]) => cip === ip && t === minAt),
                  "next reuses the least recently released",
                );
                take(ip);
              } else {
                check(codeOf(() => a.next(now)) === "Exhausted", "exhausted when nothing is free");
              }
              break;
            }
            case "alloc": {
              const ip = at(op.o);
              const l = leases.get(ip);
              const expected = !usable.has(ip)
                ? "OutsidePool"
                : l && !l.released
                  ? "Taken"
                  : l && l.at! + delayMs > now
                    ? "Cooling"
                    : "ok";
              check(codeOf(() => a.allocate(ip, now)) === expected, `allocate ${ip}: ${expected}`);
              if (expected === "ok") take(ip);
              break;
            }
            case "from": {
              const ips = op.os.map(at);
              let expected: string;
              const f = ips.find(ip => usable.has(ip) && !leases.has(ip) && !recycled.has(ip));
              const timeOf = (ip: string) =>
                recycled.get(ip) ?? (isCooled(leases.get(ip)) ? leases.get(ip)!.at : undefined);
              const c = ips
                .map((ip, i) => ({ ip, i, t: timeOf(ip) }))
                .filter(x => x.t !== undefined)
                .sort((x, y) => x.t! - y.t! || x.i - y.i);
              if (ips.some(ip => !usable.has(ip))) expected = "OutsidePool";
              else if (f) expected = f;
              else if (c.length) expected = c[0].ip;
              else expected = ips.some(ip => leases.get(ip)?.released) ? "Cooling" : "Taken";
              let got: string;
              try {
                got = a.allocateFrom(ips, now);
              } catch (e) {
                got = (e as IpamError).code;
              }
              check(got === expected, `allocateFrom ${ips}: ${expected}, got ${got}`);
              if (usable.has(got)) take(got);
              break;
            }
            case "release": {
              const ip = pick(op.o, op.pick);
              const releasedAt = now - op.back;
              a.release(ip, new Date(releasedAt));
              if (usable.has(ip)) {
                const l = leases.get(ip);
                leases.set(ip, {
                  released: true,
                  at: l?.released ? Math.max(l.at!, releasedAt) : releasedAt,
                });
                recycled.delete(ip);
              } else outside.delete(ip);
              break;
            }
            case "forget": {
              const ip = pick(op.o, op.pick);
              a.forget(ip);
              if (usable.has(ip)) {
                const t = history(ip);
                if (t !== undefined) recycled.set(ip, t);
              }
              leases.delete(ip);
              outside.delete(ip);
              break;
            }
            case "mark": {
              const ip = at(op.o);
              a.markAllocated(ip);
              if (usable.has(ip)) {
                if (!leases.has(ip) || leases.get(ip)!.released) take(ip);
              } else outside.add(ip);
              break;
            }
            case "tick":
              now += op.s;
              break;
            case "rebuild": {
              const records: LeaseRecord[] = [...leases].map(([ip, l], i) =>
                l.released
                  ? {
                      ip,
                      phase: "Released",
                      releasedAt: i % 2 ? new Date(l.at!) : new Date(l.at!).toISOString(),
                    }
                  : { ip, phase: i % 3 === 0 ? undefined : i % 3 === 1 ? "Reserved" : "Bound" },
              );
              for (const ip of outside) records.push({ ip, phase: "Bound" });
              a = new SubnetAllocator("prop", spec);
              const report = a.rebuild(records.reverse(), now);
              // Only the leases survive: recycled addresses and held histories are forgotten.
              recycled.clear();
              for (const l of leases.values()) if (!l.released) l.at = undefined;
              check(report.outside.length === outside.size, "rebuild reports outside leases");
              break;
            }
          }
          check(BigInt(a.allocated) + a.free === a.total, "allocated + free == total");
          check(a.allocated === held().length, "allocated counts held leases");
          check(
            a.releasedCount === leases.size - held().length,
            "releasedCount counts released leases",
          );
        }
        // Invariants after the sequence (and, cheaply, the state of every address).
        for (const ip of usable) {
          const l = leases.get(ip);
          const s = a.stateOf(ip, now);
          const want = !l
            ? "free"
            : !l.released
              ? "allocated"
              : l.at! + delayMs <= now
                ? "reusable"
                : "cooling";
          check(s === want, `state of ${ip}: ${want}, got ${s}`);
        }
        check(a.allocated === held().length, "allocated counts held leases");
        check(a.total === BigInt(usable.size), "total is the usable set");
        check(BigInt(a.allocated) + a.free === a.total, "allocated + free == total");
        check(a.allocatedOutside === outside.size, "outside leases are tracked");

        // Release everything, wait out the delay: the whole pool is allocatable again, once each.
        for (const ip of held()) a.release(ip, now);
        now += delayMs;
        const got = new Set<string>();
        for (let i = 0; i < usable.size; i++) {
          const ip = a.next(now);
          check(usable.has(ip) && !got.has(ip), `next ${ip} is usable and new`);
          got.add(ip);
          check(
            BigInt(a.allocated) + a.free === a.total,
            "allocated + free == total while refilling",
          );
        }
        check(codeOf(() => a.next(now)) === "Exhausted", "exhausted after the whole pool");
        return true;
      },
    ),
    { numRuns: 300 },
  );
  t.pass();
});

test("reuse order: fresh first, then by release time (lease deleted or not), also after a rebuild", t => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 40 }),
      fc.array(fc.record({ at: fc.nat(20), again: fc.option(fc.nat(20)), forget: fc.boolean() }), {
        minLength: 40,
        maxLength: 40,
      }),
      fc.boolean(),
      fc.constantFrom(0, 3),
      (n, plan, rebuild, delay) => {
        const T0 = Date.parse("2025-01-01T00:00:00Z");
        const spec = {
          cidr: "2001:db8::/120",
          ranges: [{ start: "2001:db8::10", end: `2001:db8::${(15 + n).toString(16)}` }],
          reuseDelaySeconds: delay,
        };
        let a = new SubnetAllocator("lru", spec);
        const ips = Array.from({ length: n }, () => a.next(T0));
        // Release in address order with shuffled times, some twice (a replayed event: the
        // later time counts); forget some (the Released lease is deleted: recycled).
        const releasedAt = new Map<string, number>();
        const leaseGone = new Set<string>();
        ips.forEach((ip, i) => {
          const { at, again, forget } = plan[i];
          a.release(ip, T0 + at * 1000);
          if (again !== null) a.release(ip, T0 + again * 1000);
          releasedAt.set(ip, T0 + Math.max(at, again ?? 0) * 1000);
          if (forget) {
            a.forget(ip);
            leaseGone.add(ip);
          }
        });
        if (rebuild) {
          // A new allocator knows the Released leases only: the recycled ones are fresh to it.
          a = new SubnetAllocator("lru", spec);
          a.rebuild(
            [...releasedAt]
              .filter(([ip]) => !leaseGone.has(ip))
              .map(([ip, at]) => ({ ip, phase: "Released" as const, releasedAt: new Date(at) })),
            T0,
          );
        }
        const fresh = rebuild ? ips.filter(ip => leaseGone.has(ip)) : [];
        const left = new Set(ips.filter(ip => !fresh.includes(ip)));
        const out: string[] = [];
        for (let s = 0; s <= 20 + delay; s++) {
          const now = T0 + s * 1000;
          for (;;) {
            let ip: string;
            try {
              ip = a.next(now);
            } catch {
              break;
            }
            out.push(ip);
            if (out.length <= fresh.length) continue;
            // The least recently released of those reusable now: recycled ones at once,
            // Released ones after the delay.
            const ok = (x: string) => leaseGone.has(x) || releasedAt.get(x)! + delay * 1000 <= now;
            const avail = [...left].filter(ok);
            if (!left.delete(ip) || !ok(ip)) return false; // twice, or handed out while cooling
            if (avail.some(x => releasedAt.get(x)! < releasedAt.get(ip)!)) return false;
          }
        }
        // Fresh ones first, lowest first; every address exactly once.
        return out.length === n && out.slice(0, fresh.length).join() === fresh.join();
      },
    ),
    { numRuns: 300 },
  );
  t.pass();
});

test("random scan: every usable address exactly once, whatever the random source", t => {
  fc.assert(
    fc.property(
      specArb,
      fc.array(fc.nat(), { minLength: 1, maxLength: 50 }),
      ({ spec, usable }, rolls) => {
        let i = 0;
        const random = (bound: bigint) => BigInt(rolls[i++ % rolls.length]) % bound;
        const a = new SubnetAllocator("rnd", spec, { scan: "random", random });
        const got = new Set<string>();
        for (let k = 0; k < usable.size; k++) {
          const ip = a.next(0);
          if (!usable.has(ip) || got.has(ip)) return false;
          got.add(ip);
        }
        return codeOf(() => a.next(0)) === "Exhausted" && a.free === 0n;
      },
    ),
    { numRuns: 300 },
  );
  t.pass();
});
