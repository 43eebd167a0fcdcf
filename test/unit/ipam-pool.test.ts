import test from "ava";
import fc from "fast-check";
import {
  IpamError,
  UsablePool,
  bigIntToIp,
  ipToBigInt,
  parseIp,
  type PoolSpec,
} from "../../lib/ipam";

const ips = (pool: UsablePool) => {
  const out: string[] = [];
  for (const { start, end } of pool.intervals)
    for (let x = start; x <= end; x++) out.push(bigIntToIp(pool.family, x));
  return out;
};
const invalid = (t: import("ava").ExecutionContext, spec: PoolSpec, re: RegExp) => {
  const e = t.throws(() => new UsablePool("lan", spec), { instanceOf: IpamError });
  t.is(e?.code, "Invalid");
  t.regex(e?.message ?? "", re);
  t.regex(e?.message ?? "", /subnet "lan"/);
};

test("IPv4 /24 loses network and broadcast", t => {
  const p = new UsablePool("lan", { cidr: "198.18.100.0/24" });
  t.is(p.total, 254n);
  t.deepEqual(p.intervals, [
    { start: ipToBigInt("198.18.100.1"), end: ipToBigInt("198.18.100.254") },
  ]);
});

test("/30, /31 and /32 (RFC 3021: no network or broadcast on /31 and /32)", t => {
  t.deepEqual(ips(new UsablePool("p", { cidr: "198.18.100.4/30" })), [
    "198.18.100.5",
    "198.18.100.6",
  ]);
  t.deepEqual(ips(new UsablePool("p", { cidr: "198.18.100.4/31" })), [
    "198.18.100.4",
    "198.18.100.5",
  ]);
  t.deepEqual(ips(new UsablePool("p", { cidr: "198.18.100.4/32" })), ["198.18.100.4"]);
});

test("IPv6 /64: the subnet-router anycast and RFC 2526 addresses are out and counted out", t => {
  const p = new UsablePool("v6", { cidr: "2001:db8:0:64::/64", gateway: "2001:db8:0:64::1" });
  // 2^64 minus the subnet-router anycast address, the gateway and 128 RFC 2526 addresses.
  t.is(p.total, (1n << 64n) - 1n - 1n - 128n);
  const has = (ip: string) => p.contains(ipToBigInt(ip));
  t.false(has("2001:db8:0:64::"), "RFC 4291 2.6.1: the prefix's first address is for routers");
  t.false(has("2001:db8:0:64::1"));
  t.true(has("2001:db8:0:64::2"));
  t.true(has("2001:db8:0:64:fdff:ffff:ffff:ff7f"));
  t.false(has("2001:db8:0:64:fdff:ffff:ffff:ff80"), "RFC 2526: first reserved anycast ID");
  t.false(has("2001:db8:0:64:fdff:ffff:ffff:fffe"), "0x7e: Mobile IPv6 home agents");
  t.false(has("2001:db8:0:64:fdff:ffff:ffff:ffff"));
  t.true(has("2001:db8:0:64:fe00::"));
  t.true(
    has("2001:db8:0:64:ffff:ffff:ffff:ffff"),
    "the literal top of the /64 is an ordinary address",
  );
  t.is(p.intervals.length, 2, "still a few intervals, never an enumeration");
  t.deepEqual(p.unusableReason(parseIp("2001:db8:0:64::")), { kind: "subnet-router-anycast" });
  t.deepEqual(p.unusableReason(parseIp("2001:db8:0:64:fdff:ffff:ffff:ffc0")), {
    kind: "reserved-anycast",
  });
  t.regex(p.explainOutside(parseIp("2001:db8:0:64::")), /subnet-router anycast.*RFC 4291/);
  t.regex(p.explainOutside(parseIp("2001:db8:0:64:fdff:ffff:ffff:ff80")), /RFC 2526/);
});

test("IPv6: the subnet-router anycast address goes from every prefix up to /126, not /127 or /128", t => {
  t.deepEqual(ips(new UsablePool("v6", { cidr: "2001:db8::/126" })), [
    "2001:db8::1",
    "2001:db8::2",
    "2001:db8::3",
  ]);
  t.deepEqual(ips(new UsablePool("v6", { cidr: "2001:db8::/127" })), ["2001:db8::", "2001:db8::1"]);
  t.deepEqual(ips(new UsablePool("v6", { cidr: "2001:db8::7/128" })), ["2001:db8::7"]);
  // Longer than /64: no RFC 2526 identifiers (they are defined for 64-bit interface IDs).
  const p65 = new UsablePool("v6", { cidr: "2001:db8:0:64:8000::/65" });
  t.is(p65.total, (1n << 63n) - 1n);
  t.true(p65.contains(ipToBigInt("2001:db8:0:64:fdff:ffff:ffff:ff80")));
  // A range that leaves out the first address keeps every address it names.
  const ranged = new UsablePool("v6", {
    cidr: "2001:db8::/64",
    ranges: [{ start: "2001:db8::10", end: "2001:db8::1f" }],
  });
  t.is(ranged.total, 16n);
});

test("IPv6 shorter than /64: RFC 2526 addresses in every /64, counted without enumerating", t => {
  const p = new UsablePool("v6", { cidr: "2001:db8::/48" });
  t.is(p.total, (1n << 80n) - 1n - 128n * (1n << 16n));
  const has = (ip: string) => p.contains(ipToBigInt(ip));
  t.false(has("2001:db8::"));
  t.true(has("2001:db8:0:5::"), "only the prefix's first address is subnet-router anycast");
  t.false(has("2001:db8:0:5:fdff:ffff:ffff:ff80"));
  t.false(has("2001:db8:0:ffff:fdff:ffff:ffff:ffff"));
  t.true(has("2001:db8:0:5:fdff:ffff:ffff:ff7f"));
  t.deepEqual(p.unusableReason(parseIp("2001:db8:0:5:fdff:ffff:ffff:ff81")), {
    kind: "reserved-anycast",
  });
  const ranged = new UsablePool("v6", {
    cidr: "2001:db8::/63",
    ranges: [{ start: "2001:db8:0:0:fdff:ffff:ffff:ff00", end: "2001:db8:0:1::ff" }],
  });
  // The range crosses the RFC 2526 block of the first /64 (128 addresses) into the second.
  const size = ipToBigInt("2001:db8:0:1::ff") - ipToBigInt("2001:db8:0:0:fdff:ffff:ffff:ff00") + 1n;
  t.is(ranged.total, size - 128n);
});

test("IPv6 in ::/3 (format prefix 000): the last 128 addresses of a /64 or larger prefix", t => {
  const p = new UsablePool("v6", { cidr: "::/64" });
  t.is(p.total, (1n << 64n) - 1n - 128n);
  t.false(p.contains(ipToBigInt("::ffff:ffff:ffff:ff80")));
  t.true(p.contains(ipToBigInt("::ffff:ffff:ffff:ff7f")));
  t.true(p.contains(ipToBigInt("::fdff:ffff:ffff:ff80")), "the EUI-64 form does not apply");
});

test("a /8 is one interval, not 16 million addresses", t => {
  const p = new UsablePool("big", { cidr: "198.0.0.0/8", gateway: "198.0.0.1" });
  t.is(p.total, (1n << 24n) - 3n);
  t.is(p.intervals.length, 1);
});

test("gateway inside the ranges is removed; outside the ranges changes nothing", t => {
  const inRange = new UsablePool("lan", {
    cidr: "198.18.100.0/24",
    gateway: "198.18.100.12",
    ranges: [{ start: "198.18.100.10", end: "198.18.100.14" }],
  });
  t.deepEqual(ips(inRange), ["198.18.100.10", "198.18.100.11", "198.18.100.13", "198.18.100.14"]);
  const outRange = new UsablePool("lan", {
    cidr: "198.18.100.0/24",
    gateway: "198.18.100.1",
    ranges: [{ start: "198.18.100.10", end: "198.18.100.14" }],
  });
  t.is(outRange.total, 5n);
});

test("ranges are unioned; empty ranges mean the whole CIDR", t => {
  const p = new UsablePool("lan", {
    cidr: "198.18.100.0/24",
    ranges: [
      { start: "198.18.100.20", end: "198.18.100.29" },
      { start: "198.18.100.25", end: "198.18.100.30" },
      { start: "198.18.100.0", end: "198.18.100.2" },
    ],
  });
  t.deepEqual(
    ips(p).slice(0, 3),
    ["198.18.100.1", "198.18.100.2", "198.18.100.20"],
    "network address dropped from ranges",
  );
  t.is(p.total, 2n + 11n);
  t.is(new UsablePool("lan", { cidr: "198.18.100.0/24", ranges: [] }).total, 254n);
});

test("exclusions take IPs and CIDRs", t => {
  const p = new UsablePool("lan", {
    cidr: "198.18.100.0/24",
    exclude: ["198.18.100.8/29", "198.18.100.100", "198.18.200.0/24"],
  });
  t.is(p.total, 254n - 8n - 1n);
  t.false(p.contains(ipToBigInt("198.18.100.15")));
  t.true(p.contains(ipToBigInt("198.18.100.16")));
  t.false(p.contains(ipToBigInt("198.18.100.100")));
  const v6 = new UsablePool("v6", {
    cidr: "2001:db8::/120",
    exclude: ["2001:db8::/124", "2001:db8::ff"],
  });
  t.is(v6.total, 256n - 16n - 1n);
});

test("malformed specs are rejected naming the field", t => {
  invalid(t, { cidr: "198.18.100.1/24" }, /spec\.cidr.*host bits/);
  invalid(t, { cidr: "nope" }, /spec\.cidr/);
  invalid(
    t,
    { cidr: "198.18.100.0/24", gateway: "198.18.101.1" },
    /spec\.gateway 198\.18\.101\.1 is outside cidr 198\.18\.100\.0\/24/,
  );
  invalid(t, { cidr: "198.18.100.0/24", gateway: "2001:db8::1" }, /spec\.gateway .* is IPv6/);
  invalid(
    t,
    { cidr: "198.18.100.0/24", ranges: [{ start: "198.18.100.10", end: "198.18.101.10" }] },
    /spec\.ranges\[0\]\.end 198\.18\.101\.10 is outside cidr/,
  );
  invalid(
    t,
    { cidr: "198.18.100.0/24", ranges: [{ start: "198.18.99.10", end: "198.18.100.10" }] },
    /spec\.ranges\[0\]\.start/,
  );
  invalid(
    t,
    { cidr: "198.18.100.0/24", ranges: [{ start: "198.18.100.20", end: "198.18.100.10" }] },
    /spec\.ranges\[0\] starts after it ends/,
  );
  invalid(
    t,
    { cidr: "198.18.100.0/24", ranges: [{ start: "198.18.100.x", end: "198.18.100.10" }] },
    /not a valid IP/,
  );
  invalid(
    t,
    { cidr: "198.18.100.0/24", exclude: ["198.18.100.7/24"] },
    /spec\.exclude\[0\].*host bits/,
  );
  invalid(t, { cidr: "198.18.100.0/24", exclude: ["2001:db8::/64"] }, /spec\.exclude\[0\].*IPv6/);
  invalid(
    t,
    { cidr: "198.18.100.0/24", exclude: ["bogus"] },
    /spec\.exclude\[0\] "bogus" is neither/,
  );
});

test("explainOutside says why an address is not usable", t => {
  const p = new UsablePool("lan", {
    cidr: "198.18.100.0/24",
    gateway: "198.18.100.1",
    ranges: [{ start: "198.18.100.0", end: "198.18.100.99" }],
    exclude: ["198.18.100.8/30"],
  });
  const why = (ip: string) => p.explainOutside(parseIp(ip));
  t.regex(why("198.18.101.1"), /outside cidr/);
  t.regex(why("198.18.100.0"), /network address/);
  t.regex(why("198.18.100.1"), /gateway/);
  t.regex(why("198.18.100.9"), /excluded by spec\.exclude entry "198\.18\.100\.8\/30"/);
  t.regex(why("198.18.100.200"), /outside spec\.ranges \(198\.18\.100\.0-198\.18\.100\.99\)/);
  t.regex(why("2001:db8::1"), /IPv6/);
  t.regex(
    new UsablePool("x", { cidr: "198.18.100.0/24" }).explainOutside(parseIp("198.18.100.255")),
    /broadcast/,
  );
});

// An independent oracle: enumerate a small CIDR address by address.
test("usable set matches brute-force enumeration on random small subnets", t => {
  const spec = fc
    .record({
      v6: fc.boolean(),
      prefix: fc.integer({ min: 0, max: 6 }), // host bits
      gw: fc.option(fc.integer({ min: 0, max: 63 })),
      ranges: fc.array(fc.tuple(fc.integer({ min: 0, max: 63 }), fc.integer({ min: 0, max: 63 })), {
        maxLength: 3,
      }),
      exclude: fc.array(fc.tuple(fc.integer({ min: 0, max: 63 }), fc.integer({ min: 0, max: 3 })), {
        maxLength: 3,
      }),
    })
    .map(r => {
      const size = 1 << r.prefix;
      const base = r.v6 ? ipToBigInt("2001:db8::100") : ipToBigInt("198.18.100.64");
      const fam = r.v6 ? 6 : 4;
      const bits = r.v6 ? 128 : 32;
      const at = (o: number) => bigIntToIp(fam, base + BigInt(o % size));
      const ranges = r.ranges
        .map(([a, b]) => [Math.min(a, b) % size, Math.max(a, b) % size])
        .filter(([a, b]) => a <= b);
      const exclude = r.exclude.map(([o, hb]) => {
        const block = 1 << Math.min(hb, r.prefix);
        const start = Math.floor((o % size) / block) * block;
        return {
          start,
          end: start + block - 1,
          text: block === 1 ? at(start) : `${at(start)}/${bits - Math.log2(block)}`,
        };
      });
      return {
        fam,
        size,
        base,
        at,
        ranges,
        exclude,
        gw: r.gw === null ? undefined : r.gw % size,
        cidr: `${at(0)}/${bits - r.prefix}`,
      };
    });
  fc.assert(
    fc.property(spec, s => {
      const pool = new UsablePool("p", {
        cidr: s.cidr,
        gateway: s.gw === undefined ? undefined : s.at(s.gw),
        ranges: s.ranges.map(([a, b]) => ({ start: s.at(a), end: s.at(b) })),
        exclude: s.exclude.map(e => e.text),
      });
      const expected: string[] = [];
      for (let o = 0; o < s.size; o++) {
        if (s.ranges.length && !s.ranges.some(([a, b]) => a <= o && o <= b)) continue;
        if (s.fam === 4 && s.size >= 4 && (o === 0 || o === s.size - 1)) continue;
        if (s.fam === 6 && s.size >= 4 && o === 0) continue; // subnet-router anycast (not /127)
        if (o === s.gw) continue;
        if (s.exclude.some(e => e.start <= o && o <= e.end)) continue;
        expected.push(s.at(o));
      }
      return (
        JSON.stringify(ips(pool)) === JSON.stringify(expected) &&
        pool.total === BigInt(expected.length)
      );
    }),
    { numRuns: 400 },
  );
  t.pass();
});

test("unusableReason names the first reason, with the index of the exclusion", t => {
  const p = new UsablePool("lan", {
    cidr: "198.18.100.0/24",
    gateway: "198.18.100.1",
    ranges: [{ start: "198.18.100.0", end: "198.18.100.99" }],
    exclude: ["198.18.100.50", "198.18.100.8/30", "198.18.100.8"],
  });
  const why = (ip: string) => p.unusableReason(parseIp(ip));
  t.is(why("198.18.100.20"), undefined);
  t.deepEqual(why("2001:db8::1"), { kind: "family" });
  t.deepEqual(why("198.18.101.1"), { kind: "cidr" });
  t.deepEqual(why("198.18.100.0"), { kind: "network" });
  t.deepEqual(why("198.18.100.255"), { kind: "broadcast" });
  t.deepEqual(why("198.18.100.1"), { kind: "gateway" });
  t.deepEqual(why("198.18.100.8"), { kind: "exclude", index: 1, entry: "198.18.100.8/30" });
  t.deepEqual(why("198.18.100.200"), { kind: "ranges" });
  // No network or broadcast on a /31; IPv6 loses its first address (except on a /127).
  const p2p = new UsablePool("p2p", { cidr: "198.18.100.4/31", gateway: "198.18.100.4" });
  t.deepEqual(p2p.unusableReason(parseIp("198.18.100.4")), { kind: "gateway" });
  t.deepEqual(
    new UsablePool("v6", { cidr: "2001:db8::/64" }).unusableReason(parseIp("2001:db8::")),
    { kind: "subnet-router-anycast" },
  );
  t.is(
    new UsablePool("v6", { cidr: "2001:db8::/127" }).unusableReason(parseIp("2001:db8::")),
    undefined,
  );
});

test("IPv4-mapped IPv6 is refused in every field, as the CRD's isIP/isCIDR do", t => {
  invalid(t, { cidr: "::ffff:198.18.100.0/120" }, /spec\.cidr.*IPv4-mapped/);
  const v6 = { cidr: "::/64" };
  invalid(
    t,
    { ...v6, gateway: "::ffff:198.18.100.1" },
    /spec\.gateway "::ffff:198\.18\.100\.1" is not a valid IP/,
  );
  invalid(
    t,
    { ...v6, ranges: [{ start: "::1", end: "::ffff:c612:6401" }] },
    /spec\.ranges\[0\]\.end/,
  );
  invalid(t, { ...v6, exclude: ["::ffff:198.18.100.1"] }, /spec\.exclude\[0\]/);
});

test("ranges and exclude must be lists of the right shape", t => {
  const cidr = "198.18.100.0/24";
  invalid(
    t,
    { cidr, ranges: "198.18.100.1" as unknown as PoolSpec["ranges"] },
    /spec\.ranges must be a list/,
  );
  invalid(
    t,
    { cidr, ranges: [null as unknown as { start: string; end: string }] },
    /spec\.ranges\[0\]/,
  );
  invalid(
    t,
    { cidr, exclude: "198.18.100.1" as unknown as string[] },
    /spec\.exclude must be a list/,
  );
  invalid(t, { cidr, exclude: [7 as unknown as string] }, /spec\.exclude\[0\]/);
});
