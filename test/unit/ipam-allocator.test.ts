import test from "ava";
import {
  IpamError,
  SubnetAllocator,
  cryptoRandomBigInt,
  isIpamError,
  type AllocatorOptions,
  type AllocatorSpec,
  type IpamErrorCode,
} from "../../lib/ipam";

const T0 = Date.parse("2025-01-01T00:00:00Z");
const sec = (s: number) => T0 + s * 1000;
const lan = (extra: Partial<AllocatorSpec> = {}, options?: AllocatorOptions) =>
  new SubnetAllocator(
    "lan",
    { cidr: "198.18.100.0/24", gateway: "198.18.100.1", reuseDelaySeconds: 30, ...extra },
    options,
  );
const small = (n: number, extra: Partial<AllocatorSpec> = {}, options?: AllocatorOptions) =>
  lan({ ranges: [{ start: "198.18.100.10", end: `198.18.100.${9 + n}` }], ...extra }, options);

const fails = (
  t: import("ava").ExecutionContext,
  fn: () => unknown,
  code: IpamErrorCode,
  ...res: RegExp[]
) => {
  const e = t.throws(fn, { instanceOf: IpamError });
  t.is(e?.code, code);
  for (const re of res) t.regex(e?.message ?? "", re);
  return e;
};

test("next hands out the lowest usable addresses, skipping network and gateway", t => {
  const a = lan();
  t.deepEqual(
    [a.next(T0), a.next(T0), a.next(T0)],
    ["198.18.100.2", "198.18.100.3", "198.18.100.4"],
  );
  t.is(a.stateOf("198.18.100.2", T0), "allocated");
});

test("counters: total, allocated and free", t => {
  const a = lan({ exclude: ["198.18.100.200/29"] });
  t.is(a.total, 254n - 1n - 8n);
  t.is(a.allocated, 0);
  t.is(a.free, a.total);
  a.next(T0);
  a.allocate("198.18.100.50", T0);
  t.is(a.allocated, 2);
  t.is(a.free, a.total - 2n);
  a.release("198.18.100.50", T0);
  t.is(a.allocated, 1, "a released lease is no longer allocated");
  t.is(a.free, a.total - 1n, "cooling addresses count as free");
  t.is(a.releasedCount, 1);
  a.forget("198.18.100.50");
  t.is(a.releasedCount, 0);
  t.is(a.free, a.total - 1n);
  t.deepEqual(
    a.counters(),
    { total: "245", allocated: 1, free: "244" },
    "status form: decimal strings",
  );
  const v6 = new SubnetAllocator("v6", { cidr: "2001:db8::/64" });
  // 2^64 minus the subnet-router anycast address and the 128 RFC 2526 anycast addresses.
  t.deepEqual(v6.counters(), {
    total: "18446744073709551487",
    allocated: 0,
    free: "18446744073709551487",
  });
});

test("next on an IPv6 /64 and an IPv4 /8", t => {
  const v6 = new SubnetAllocator("v6", { cidr: "2001:db8:0:64::/64", gateway: "2001:db8:0:64::1" });
  // Not 2001:db8:0:64:: : the subnet-router anycast address (RFC 4291 2.6.1) is the routers'.
  t.is(v6.next(T0), "2001:db8:0:64::2");
  t.is(v6.next(T0), "2001:db8:0:64::3");
  t.is(v6.total, (1n << 64n) - 2n - 128n);
  t.is(v6.free, (1n << 64n) - 4n - 128n);
  const v4 = new SubnetAllocator("big", { cidr: "198.0.0.0/8" });
  t.is(v4.next(T0), "198.0.0.1");
  t.is(v4.total, (1n << 24n) - 2n);
});

test("IPv6 anycast addresses are never leased: subnet-router (RFC 4291) and RFC 2526", t => {
  const v6 = new SubnetAllocator("v6", { cidr: "2001:db8:0:64::/64" });
  t.is(v6.next(T0), "2001:db8:0:64::1");
  fails(
    t,
    () => v6.allocate("2001:db8:0:64::", T0),
    "OutsidePool",
    /subnet-router anycast address of 2001:db8:0:64::\/64/,
    /anycast/,
  );
  fails(
    t,
    () => v6.allocate("2001:db8:0:64:fdff:ffff:ffff:ff80", T0),
    "OutsidePool",
    /reserved subnet anycast address.*RFC 2526/,
  );
  t.is(v6.allocate("2001:db8:0:64:fdff:ffff:ffff:ff7f", T0), "2001:db8:0:64:fdff:ffff:ffff:ff7f");
  t.is(v6.stateOf("2001:db8:0:64:fdff:ffff:ffff:ffff", T0), "outside");
  // A /48 has them in each /64: next() steps over them.
  const wide = new SubnetAllocator("v6", {
    cidr: "2001:db8::/48",
    ranges: [{ start: "2001:db8:0:7:fdff:ffff:ffff:ff7e", end: "2001:db8:0:7:fe00::1" }],
  });
  t.is(wide.total, 4n);
  t.deepEqual(
    [wide.next(T0), wide.next(T0), wide.next(T0), wide.next(T0)],
    [
      "2001:db8:0:7:fdff:ffff:ffff:ff7e",
      "2001:db8:0:7:fdff:ffff:ffff:ff7f",
      "2001:db8:0:7:fe00::",
      "2001:db8:0:7:fe00::1",
    ],
  );
  fails(t, () => wide.next(T0), "Exhausted");
  t.is(wide.free, 0n);
});

test("allocate takes a given address; normalises IPv6", t => {
  const a = lan();
  t.is(a.allocate("198.18.100.77", T0), "198.18.100.77");
  t.is(a.next(T0), "198.18.100.2", "a fixed IP does not move the cursor");
  const v6 = new SubnetAllocator("v6", { cidr: "2001:db8::/64" });
  t.is(v6.allocate("2001:DB8:0::7", T0), "2001:db8::7");
  fails(t, () => v6.allocate("2001:db8::0:7", T0), "Taken");
});

test("fixed IP errors are typed and explain themselves", t => {
  const a = small(5, { exclude: ["198.18.100.12"] });
  a.allocate("198.18.100.10", T0);
  fails(
    t,
    () => a.allocate("198.18.100.10", T0),
    "Taken",
    /198\.18\.100\.10/,
    /subnet "lan"/,
    /lan-198-18-100-10/,
    /choose another IP/,
  );
  fails(
    t,
    () => a.allocate("198.18.101.10", T0),
    "OutsidePool",
    /198\.18\.101\.10/,
    /outside cidr 198\.18\.100\.0\/24/,
    /Choose an address in 198\.18\.100\.10-198\.18\.100\.14/,
  );
  fails(t, () => a.allocate("198.18.100.12", T0), "OutsidePool", /excluded/);
  fails(t, () => a.allocate("198.18.100.1", T0), "OutsidePool", /gateway/);
  fails(t, () => a.allocate("198.18.100.99", T0), "OutsidePool", /outside spec\.ranges/);
  fails(t, () => a.allocate("2001:db8::1", T0), "OutsidePool", /IPv6/);
  fails(
    t,
    () => a.allocate("198.18.100.300", T0),
    "Invalid",
    /"198\.18\.100\.300"/,
    /subnet "lan"/,
  );
  a.release("198.18.100.10", sec(0));
  fails(
    t,
    () => a.allocate("198.18.100.10", sec(29)),
    "Cooling",
    /198\.18\.100\.10/,
    /2025-01-01T00:00:30\.000Z/,
    /reuseDelaySeconds: 30/,
    /retry after/,
  );
  t.is(
    a.allocate("198.18.100.10", sec(30)),
    "198.18.100.10",
    "reusable exactly when the delay has passed",
  );
  t.true(isIpamError(new IpamError("Taken", "x"), "Taken"));
  t.false(isIpamError(new Error("x")));
});

test("exhausted: names the subnet, its size and what to do", t => {
  const a = small(3);
  a.next(T0);
  a.next(T0);
  a.next(T0);
  const e = fails(
    t,
    () => a.next(T0),
    "Exhausted",
    /subnet "lan"/,
    /all 3 usable addresses/,
    /Grow spec\.ranges or spec\.cidr/,
    /macvlan\.dev\/subnet=lan/,
  );
  t.is(e?.subnet, "lan");
  a.release("198.18.100.11", sec(0));
  fails(
    t,
    () => a.next(sec(10)),
    "Exhausted",
    /1 of them released and cooling/,
    /2025-01-01T00:00:30\.000Z/,
  );
  t.is(a.next(sec(30)), "198.18.100.11");
  const none = new SubnetAllocator("p2p", { cidr: "198.18.100.7/32", gateway: "198.18.100.7" });
  t.is(none.total, 0n);
  fails(t, () => none.next(T0), "Exhausted", /no usable address/);
});

test("reuse delay: a released IP waits, never-used ones go first", t => {
  const a = small(4, { reuseDelaySeconds: 60 });
  t.is(a.next(sec(0)), "198.18.100.10");
  a.release("198.18.100.10", sec(1));
  // Long after the delay, never-used addresses are still preferred.
  t.deepEqual(
    [a.next(sec(100)), a.next(sec(100)), a.next(sec(100))],
    ["198.18.100.11", "198.18.100.12", "198.18.100.13"],
  );
  t.is(a.next(sec(100)), "198.18.100.10");
  a.release("198.18.100.10", sec(200));
  fails(t, () => a.next(sec(259)), "Exhausted");
  t.is(a.stateOf("198.18.100.10", sec(259)), "cooling");
  t.is(a.stateOf("198.18.100.10", sec(260)), "reusable");
  t.is(a.next(sec(260)), "198.18.100.10");
});

test("reuse prefers the least recently released address", t => {
  const a = small(4, { reuseDelaySeconds: 10 });
  for (let i = 0; i < 4; i++) a.next(T0);
  a.release("198.18.100.12", sec(1));
  a.release("198.18.100.10", sec(2));
  a.release("198.18.100.13", sec(3));
  a.release("198.18.100.11", sec(4));
  t.is(a.next(sec(13)), "198.18.100.12");
  t.is(a.next(sec(13)), "198.18.100.10");
  fails(t, () => a.next(sec(12.5)), "Exhausted", /reusable at 2025-01-01T00:00:13\.000Z/);
  t.is(a.next(sec(14)), "198.18.100.13");
  t.is(a.next(sec(14)), "198.18.100.11");
});

test("reuse prefers the least recently released address after its Released lease is deleted", t => {
  // The lease lifecycle deletes a Released lease once its delay has passed (forget): the
  // address must keep its place in the reuse order, not go back to lowest-first.
  const a = small(4, { reuseDelaySeconds: 10 });
  for (let i = 0; i < 4; i++) a.next(T0);
  a.release("198.18.100.12", sec(1)); // the older release
  a.release("198.18.100.10", sec(2));
  a.release("198.18.100.13", sec(3));
  a.forget("198.18.100.10"); // expired and deleted, in any order
  a.forget("198.18.100.12");
  t.is(a.stateOf("198.18.100.12", sec(20)), "free");
  t.is(a.next(sec(20)), "198.18.100.12");
  t.is(a.next(sec(20)), "198.18.100.10");
  t.is(a.next(sec(20)), "198.18.100.13", "a Released lease past its delay, in release order");
  fails(t, () => a.next(sec(20)), "Exhausted");
});

test("fresh addresses go first; reuse mixes deleted and Released leases by release time", t => {
  const a = small(5, { reuseDelaySeconds: 10 });
  for (let i = 0; i < 3; i++) a.next(T0); // .10 .11 .12; .13 and .14 stay fresh
  a.release("198.18.100.11", sec(1));
  a.release("198.18.100.10", sec(2));
  a.release("198.18.100.12", sec(3));
  a.forget("198.18.100.10");
  a.forget("198.18.100.12");
  t.deepEqual(
    [a.next(sec(5)), a.next(sec(5))],
    ["198.18.100.13", "198.18.100.14"],
    "never-used addresses first (README: a released IP waits)",
  );
  // .11 (released at 1) is still cooling at 5: the recycled .10 and .12 come first.
  t.is(a.next(sec(5)), "198.18.100.10");
  t.is(a.next(sec(11)), "198.18.100.11", "at 11 the oldest release, .11, is reusable");
  t.is(a.next(sec(11)), "198.18.100.12");
});

test("a reused candidate given back (dry run, failed create) keeps its place", t => {
  const a = small(3, { reuseDelaySeconds: 0 });
  for (let i = 0; i < 3; i++) a.next(T0);
  a.release("198.18.100.12", sec(1));
  a.release("198.18.100.10", sec(2));
  a.forget("198.18.100.12");
  a.forget("198.18.100.10");
  const ip = a.next(sec(3));
  t.is(ip, "198.18.100.12");
  a.forget(ip); // the create failed: nothing was leased
  t.is(a.next(sec(3)), "198.18.100.12", "still the least recently released");
  t.is(a.next(sec(3)), "198.18.100.10");
  // Allocated again and released anew: the new time counts.
  a.release("198.18.100.12", sec(9));
  a.release("198.18.100.10", sec(8));
  t.is(a.next(sec(9)), "198.18.100.10");
});

test("allocateFrom and next() share one order", t => {
  const a = small(4, { reuseDelaySeconds: 10 });
  for (let i = 0; i < 4; i++) a.next(T0);
  a.release("198.18.100.13", sec(1));
  a.release("198.18.100.12", sec(2));
  a.forget("198.18.100.12");
  a.forget("198.18.100.13");
  t.is(a.allocateFrom(["198.18.100.12", "198.18.100.13"], sec(3)), "198.18.100.13");
});

test("recycled addresses are bounded: past maxRecycled the oldest become fresh", t => {
  const a = new SubnetAllocator(
    "lan",
    { cidr: "198.18.100.0/24", ranges: [{ start: "198.18.100.10", end: "198.18.100.14" }] },
    { maxRecycled: 2 },
  );
  for (let i = 0; i < 4; i++) a.next(T0); // .14 stays fresh
  a.release("198.18.100.13", sec(1));
  a.release("198.18.100.12", sec(2));
  a.release("198.18.100.11", sec(3));
  for (const ip of ["198.18.100.13", "198.18.100.12", "198.18.100.11"]) a.forget(ip);
  // .13, the oldest, is fresh again (lowest fresh first); .12 and .11 keep their order.
  t.deepEqual(
    [a.next(sec(100)), a.next(sec(100)), a.next(sec(100)), a.next(sec(100))],
    ["198.18.100.13", "198.18.100.14", "198.18.100.12", "198.18.100.11"],
  );
  fails(
    t,
    () => new SubnetAllocator("lan", { cidr: "198.18.100.0/24" }, { maxRecycled: -1 }),
    "Invalid",
    /maxRecycled/,
  );
});

test("release with an earlier time than queued ones still keeps the order", t => {
  const a = small(3, { reuseDelaySeconds: 10 });
  for (let i = 0; i < 3; i++) a.next(T0);
  a.release("198.18.100.10", sec(5));
  a.release("198.18.100.11", sec(1)); // late event with the lease's older releasedAt
  a.release("198.18.100.12", new Date(sec(3)));
  t.deepEqual(
    [a.next(sec(20)), a.next(sec(20)), a.next(sec(20))],
    ["198.18.100.11", "198.18.100.12", "198.18.100.10"],
  );
});

test("release is idempotent and keeps the latest release time", t => {
  const a = small(2, { reuseDelaySeconds: 10 });
  a.next(T0);
  a.next(T0);
  a.release("198.18.100.10", sec(0));
  a.release("198.18.100.10", sec(5));
  a.release("198.18.100.10", sec(2));
  t.is(a.stateOf("198.18.100.10", sec(14)), "cooling");
  t.is(a.stateOf("198.18.100.10", sec(15)), "reusable");
  a.release("198.18.100.11", "2025-01-01T00:00:01Z");
  t.is(a.next(sec(15)), "198.18.100.11");
});

test("markAllocated: someone else holds it, whatever we thought", t => {
  const a = small(3);
  a.markAllocated("198.18.100.10");
  t.is(a.next(T0), "198.18.100.11", "AlreadyExists → mark and ask again");
  a.release("198.18.100.11", T0);
  a.markAllocated("198.18.100.11"); // another replica took it over
  a.markAllocated("198.18.100.11");
  t.is(a.allocated, 2);
  t.is(a.next(sec(1000)), "198.18.100.12");
  fails(t, () => a.next(sec(1000)), "Exhausted");
  a.markAllocated("198.18.100.200");
  t.is(a.allocatedOutside, 1);
  t.deepEqual(a.outsideIps(), ["198.18.100.200"]);
  t.is(a.allocated, 3, "outside addresses are not in the counters");
});

test("forget frees at once, even a cooling address", t => {
  const a = small(2, { reuseDelaySeconds: 3600 });
  a.next(T0);
  a.next(T0);
  a.release("198.18.100.10", T0);
  a.forget("198.18.100.10");
  t.is(a.stateOf("198.18.100.10", T0), "free");
  t.is(a.next(T0), "198.18.100.10");
  a.forget("198.18.100.11");
  a.forget("198.18.100.11");
  t.is(a.free, 1n);
  t.is(a.next(T0), "198.18.100.11");
  a.markAllocated("198.18.101.1");
  a.forget("198.18.101.1");
  t.is(a.allocatedOutside, 0);
});

test("allocateFrom: never-used first in list order, then least recently released", t => {
  const a = small(10, { reuseDelaySeconds: 10 });
  const pool = ["198.18.100.15", "198.18.100.12", "198.18.100.18"];
  t.is(a.allocateFrom(pool, T0), "198.18.100.15");
  t.is(a.allocateFrom(pool, T0), "198.18.100.12");
  t.is(a.allocateFrom(pool, T0), "198.18.100.18");
  fails(
    t,
    () => a.allocateFrom(pool, T0),
    "Taken",
    /no IP of the pool list is free in subnet "lan"/,
    /198\.18\.100\.12 is leased \(lan-198-18-100-12\)/,
  );
  a.release("198.18.100.18", sec(1));
  a.release("198.18.100.15", sec(2));
  fails(
    t,
    () => a.allocateFrom(pool, sec(5)),
    "Cooling",
    /198\.18\.100\.18 is cooling until 2025-01-01T00:00:11\.000Z/,
  );
  t.is(a.allocateFrom(pool, sec(20)), "198.18.100.18");
  t.is(a.allocateFrom(pool, sec(20)), "198.18.100.15");
  fails(
    t,
    () => a.allocateFrom(["198.18.100.11", "198.18.100.99"], T0),
    "OutsidePool",
    /198\.18\.100\.99/,
  );
  fails(t, () => a.allocateFrom(["198.18.100.11", "nope"], T0), "Invalid", /"nope"/);
  fails(t, () => a.allocateFrom([], T0), "Invalid", /empty/);
  t.is(a.stateOf("198.18.100.11", T0), "free", "a rejected list allocates nothing");
});

test("rebuild from leases: allocated, cooling, outside, invalid, duplicates", t => {
  const a = small(6, { reuseDelaySeconds: 30 });
  a.next(T0); // replaced by the rebuild
  const report = a.rebuild(
    [
      { ip: "198.18.100.11", phase: "Bound" },
      { ip: "198.18.100.10" }, // status not written yet: Reserved
      { ip: "198.18.100.13", phase: "Released", releasedAt: new Date(sec(0)).toISOString() },
      { ip: "198.18.100.12", phase: "Released", releasedAt: new Date(sec(-10)) },
      { ip: "198.18.100.14", phase: "Released" }, // no time: cools from now
      { ip: "198.18.100.15", phase: "Reserved" },
      { ip: "198.18.100.15", phase: "Released", releasedAt: sec(-100) },
      { ip: "198.18.100.99", phase: "Bound" },
      { ip: "198.18.101.5", phase: "Released" },
      { ip: "garbage", phase: "Bound" },
    ],
    sec(5),
  );
  t.deepEqual(report, {
    outside: ["198.18.100.99"],
    invalid: ["garbage"],
    duplicates: ["198.18.100.15"],
  });
  t.is(a.allocated, 3);
  t.is(a.allocatedOutside, 1);
  t.is(a.releasedCount, 3);
  t.is(a.free, 3n);
  t.is(a.stateOf("198.18.100.99", T0), "outside");
  fails(t, () => a.next(sec(19)), "Exhausted");
  t.is(a.next(sec(20)), "198.18.100.12");
  fails(t, () => a.next(sec(29)), "Exhausted");
  t.is(a.next(sec(30)), "198.18.100.13");
  fails(t, () => a.next(sec(34)), "Exhausted");
  t.is(a.next(sec(35)), "198.18.100.14");
  a.release("198.18.100.99", sec(40));
  t.is(a.allocatedOutside, 0, "releasing an outside lease drops it");
});

test("rebuild leaves never-leased addresses free, lowest first", t => {
  const a = lan();
  a.rebuild(
    [
      { ip: "198.18.100.2", phase: "Bound" },
      { ip: "198.18.100.4", phase: "Bound" },
    ],
    T0,
  );
  t.deepEqual(
    [a.next(T0), a.next(T0), a.next(T0)],
    ["198.18.100.3", "198.18.100.5", "198.18.100.6"],
  );
});

test("the spec is validated", t => {
  fails(
    t,
    () => new SubnetAllocator("lan", { cidr: "198.18.100.0/24", reuseDelaySeconds: -1 }),
    "Invalid",
    /reuseDelaySeconds/,
  );
  fails(t, () => new SubnetAllocator("lan", { cidr: "198.18.100.0/33" }), "Invalid", /spec\.cidr/);
  t.is(
    new SubnetAllocator("lan", { cidr: "198.18.100.0/24" }).reuseDelaySeconds,
    30,
    "default delay",
  );
  t.is(
    new SubnetAllocator("lan", { cidr: "198.18.100.0/24", reuseDelaySeconds: 0 }).reuseDelaySeconds,
    0,
  );
});

test("markAllocated, release and forget reject malformed IPs", t => {
  const a = lan();
  fails(t, () => a.markAllocated("x"), "Invalid");
  fails(t, () => a.markAllocated("::ffff:198.18.100.7"), "Invalid", /IPv4-mapped/);
  fails(t, () => a.release("x", T0), "Invalid");
  fails(t, () => a.forget("x"), "Invalid");
  t.throws(() => a.release("198.18.100.2", "not a date"), { instanceOf: TypeError });
});

test("an IPv4-mapped IPv6 address is never leased, even from a CIDR that covers it", t => {
  // ::/64 contains ::ffff:0:0/96; the lease CRD (isIP) would refuse such an address anyway.
  const a = new SubnetAllocator("v6", { cidr: "::/64" });
  fails(
    t,
    () => a.allocate("::ffff:198.18.100.7", T0),
    "Invalid",
    /IPv4-mapped IPv6 address is not accepted/,
  );
  fails(t, () => a.allocateFrom(["::ffff:c612:6407"], T0), "Invalid");
  t.deepEqual(a.rebuild([{ ip: "::ffff:198.18.100.7" }], T0).invalid, ["::ffff:198.18.100.7"]);
});

/** A random source that returns the given values in turn (then repeats the last). */
const scripted = (...values: bigint[]) => {
  const bounds: bigint[] = [];
  const random = (bound: bigint) => {
    bounds.push(bound);
    return values.length > 1 ? values.shift()! : values[0];
  };
  return { random, bounds };
};

test("scan: random starts at a random usable address, goes up and wraps around", t => {
  const { random, bounds } = scripted(100n, 100n, 252n, 252n);
  const a = lan({}, { scan: "random", random });
  t.is(a.scan, "random");
  t.is(a.next(T0), "198.18.100.102", "the 101st usable address (.2 is the first)");
  a.markAllocated("198.18.100.103");
  t.is(a.next(T0), "198.18.100.104", "taken ones are stepped over");
  t.is(a.next(T0), "198.18.100.254");
  t.is(a.next(T0), "198.18.100.2", "past the top it wraps to the lowest free address");
  t.deepEqual(new Set(bounds), new Set([253n]), "uniform over the 253 usable addresses");
  t.is(lan().scan, "lowest", "deterministic by default");
  fails(
    t,
    () => lan({}, { scan: "middle" as unknown as "lowest" }),
    "Invalid",
    /scan must be "lowest" or "random"/,
  );
});

test("scan: random never hands out reserved addresses and still reuses least recently released", t => {
  const wide = new SubnetAllocator(
    "v6",
    {
      cidr: "2001:db8::/48",
      ranges: [{ start: "2001:db8:0:7:fdff:ffff:ffff:ff7f", end: "2001:db8:0:7:fe00::" }],
    },
    { scan: "random", random: () => 1n }, // lands on the first RFC 2526 address
  );
  t.is(wide.next(T0), "2001:db8:0:7:fe00::");
  t.is(wide.next(T0), "2001:db8:0:7:fdff:ffff:ffff:ff7f");
  fails(t, () => wide.next(T0), "Exhausted");

  const a = small(3, { reuseDelaySeconds: 0 }, { scan: "random", random: () => 1n });
  t.deepEqual(
    [a.next(T0), a.next(T0), a.next(T0)],
    ["198.18.100.11", "198.18.100.12", "198.18.100.10"],
  );
  a.release("198.18.100.12", sec(1));
  a.release("198.18.100.10", sec(2));
  t.is(a.next(sec(3)), "198.18.100.12");
});

test("scan: random makes two replicas with the same view rarely propose the same address", t => {
  // Two admission replicas each admit a burst of 20 pods from the same empty /24.
  const seeded = (seed: number) => (bound: bigint) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return BigInt(seed) % bound;
  };
  const burst = (a: SubnetAllocator) => new Set(Array.from({ length: 20 }, () => a.next(T0)));
  const overlap = (x: Set<string>, y: Set<string>) => [...x].filter(ip => y.has(ip)).length;
  t.is(overlap(burst(lan()), burst(lan())), 20, "lowest-first: every proposal collides");
  const r1 = burst(lan({}, { scan: "random", random: seeded(1) }));
  const r2 = burst(lan({}, { scan: "random", random: seeded(2) }));
  t.true(overlap(r1, r2) <= 5, `random start: ${overlap(r1, r2)} of 20 collide`);
});

test("cryptoRandomBigInt is uniform enough and stays below its bound, up to 2^128", t => {
  for (const bound of [1n, 2n, 253n, 1n << 64n, (1n << 128n) - 1n]) {
    for (let i = 0; i < 200; i++) {
      const x = cryptoRandomBigInt(bound);
      t.true(x >= 0n && x < bound);
    }
  }
  const seen = new Set(Array.from({ length: 400 }, () => cryptoRandomBigInt(4n)));
  t.is(seen.size, 4);
  t.throws(() => cryptoRandomBigInt(0n), { instanceOf: RangeError });
});
