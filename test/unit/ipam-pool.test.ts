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

test("IPv6 keeps every address and handles a /64 without enumerating it", t => {
  const p = new UsablePool("v6", { cidr: "2001:db8:0:64::/64", gateway: "2001:db8:0:64::1" });
  t.is(p.total, (1n << 64n) - 1n);
  t.true(p.contains(ipToBigInt("2001:db8:0:64::")));
  t.false(p.contains(ipToBigInt("2001:db8:0:64::1")));
  t.true(p.contains(ipToBigInt("2001:db8:0:64:ffff:ffff:ffff:ffff")));
  t.is(p.intervals.length, 2);
  t.deepEqual(ips(new UsablePool("v6", { cidr: "2001:db8::/127" })), ["2001:db8::", "2001:db8::1"]);
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
  // No network or broadcast on a /31, and IPv6 keeps its first address.
  const p2p = new UsablePool("p2p", { cidr: "198.18.100.4/31", gateway: "198.18.100.4" });
  t.deepEqual(p2p.unusableReason(parseIp("198.18.100.4")), { kind: "gateway" });
  t.is(
    new UsablePool("v6", { cidr: "2001:db8::/64" }).unusableReason(parseIp("2001:db8::")),
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
