import test from "ava";
import fc from "fast-check";
import ipaddr from "ipaddr.js";
import {
  IpamError,
  bigIntToIp,
  cidrWithin,
  cidrsOverlap,
  expandIpv6,
  formatCidr,
  ipFamily,
  ipInCidr,
  ipToBigInt,
  ipWithPrefix,
  isIp,
  isIpv4Mapped,
  networkAndBroadcast,
  normalizeIp,
  parseCidr,
  parseIp,
  prefixLength,
  splitIpList,
  tryParseIp,
  tryParseIpOrPrefix,
  tryParsePrefix,
} from "../../lib/ipam";

test("IPv4 converts to and from BigInt", t => {
  t.is(ipToBigInt("0.0.0.0"), 0n);
  t.is(ipToBigInt("198.18.100.7"), (198n << 24n) | (18n << 16n) | (100n << 8n) | 7n);
  t.is(ipToBigInt("255.255.255.255"), 0xffffffffn);
  t.is(bigIntToIp(4, ipToBigInt("198.18.100.7")), "198.18.100.7");
  t.is(ipFamily("198.18.0.1"), 4);
});

test("IPv6 converts to and from BigInt", t => {
  t.is(ipToBigInt("::"), 0n);
  t.is(ipToBigInt("::1"), 1n);
  t.is(ipToBigInt("2001:db8::7"), (0x20010db8n << 96n) | 7n);
  t.is(ipToBigInt("2001:DB8:0:0:0:0:0:7"), ipToBigInt("2001:db8::7"));
  t.is(ipToBigInt("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), (1n << 128n) - 1n);
  t.is(ipToBigInt("::ffff:198.18.0.1"), (0xffffn << 32n) | ipToBigInt("198.18.0.1"));
  // The deprecated IPv4-compatible form keeps its bits (ipaddr.js 2.5 maps it to ::ffff:…).
  t.is(ipToBigInt("::1.2.3.4"), 0x01020304n);
  t.is(ipFamily("2001:db8::1"), 6);
});

test("formatting follows RFC 5952", t => {
  t.is(bigIntToIp(6, 0n), "::");
  t.is(bigIntToIp(6, 1n), "::1");
  t.is(bigIntToIp(6, ipToBigInt("2001:db8:0:0:1:0:0:1")), "2001:db8::1:0:0:1"); // leftmost longest run
  t.is(bigIntToIp(6, ipToBigInt("2001:db8:0:1:1:1:1:1")), "2001:db8:0:1:1:1:1:1"); // one zero group stays
  t.is(bigIntToIp(6, ipToBigInt("2001:db8::")), "2001:db8::");
  t.is(normalizeIp("2001:DB8:0000::0007"), "2001:db8::7");
  t.throws(() => bigIntToIp(4, 1n << 32n), { instanceOf: RangeError });
  t.throws(() => bigIntToIp(6, -1n), { instanceOf: RangeError });
});

test("malformed addresses are rejected with a typed error", t => {
  for (const bad of [
    "",
    "1.2.3",
    "1.2.3.4.5",
    "01.2.3.4",
    "256.1.1.1",
    "0x1.2.3.4",
    " 1.2.3.4",
    "1.2.3.4/32",
    "2001:db8::1::",
    ":::",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7::8",
    "2001:db8:00000::1",
    "fe80::1%eth0",
    "::1.2.3",
    "g::1",
    ":1::",
    "1::2:",
  ]) {
    t.false(isIp(bad), bad);
    const e = t.throws(() => ipToBigInt(bad), { instanceOf: IpamError });
    t.is(e?.code, "Invalid");
    t.true(e?.message.includes(`"${bad}"`));
  }
});

test("parser and formatter agree with ipaddr.js on random IPv6", t => {
  // Groups are often zero so that "::" runs of every length and position occur.
  const group = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff }));
  fc.assert(
    fc.property(fc.array(group, { minLength: 8, maxLength: 8 }), groups => {
      const n = groups.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
      const text = bigIntToIp(6, n);
      const ref = ipaddr.IPv6.parse(text);
      return (
        ipToBigInt(text) === n &&
        ref.toRFC5952String() === text &&
        ipToBigInt(ref.toNormalizedString()) === n &&
        ipToBigInt(
          ref.parts
            .map(p => p.toString(16).padStart(4, "0"))
            .join(":")
            .toUpperCase(),
        ) === n
      );
    }),
    { numRuns: 3000 },
  );
  t.pass();
});

test("expandIpv6 is fixed width", t => {
  t.is(expandIpv6(ipToBigInt("2001:db8::7"), "-"), "2001-0db8-0000-0000-0000-0000-0000-0007");
  t.is(expandIpv6(0n), "0000:0000:0000:0000:0000:0000:0000:0000");
});

test("parseCidr returns family, network, prefix and bounds", t => {
  t.deepEqual(parseCidr("198.18.100.0/24"), {
    family: 4,
    network: ipToBigInt("198.18.100.0"),
    prefixLength: 24,
    first: ipToBigInt("198.18.100.0"),
    last: ipToBigInt("198.18.100.255"),
  });
  const v6 = parseCidr("2001:db8:0:64::/64");
  t.is(v6.family, 6);
  t.is(v6.last - v6.first + 1n, 1n << 64n);
  t.is(parseCidr("198.18.100.7/32").first, parseCidr("198.18.100.7/32").last);
  t.is(parseCidr("0.0.0.0/0").last, 0xffffffffn);
  t.is(prefixLength("2001:db8::/32"), 32);
});

test("parseCidr rejects malformed input and host bits", t => {
  for (const bad of [
    "198.18.100.0",
    "198.18.100.0/33",
    "198.18.100.0/-1",
    "198.18.100.0/024",
    "198.18.100.0/",
    "x/24",
    "2001:db8::/129",
  ]) {
    const e = t.throws(() => parseCidr(bad), { instanceOf: IpamError }, bad);
    t.is(e?.code, "Invalid");
    t.true(e?.message.includes(bad));
  }
  const e = t.throws(() => parseCidr("198.18.100.7/24"));
  t.regex(e?.message ?? "", /host bits set.*198\.18\.100\.0\/24/);
  t.regex(t.throws(() => parseCidr("2001:db8::1/64"))?.message ?? "", /2001:db8::\/64/);
});

test("ipInCidr, ipWithPrefix and splitIpList", t => {
  t.true(ipInCidr("198.18.100.255", "198.18.100.0/24"));
  t.false(ipInCidr("198.18.101.0", "198.18.100.0/24"));
  t.false(ipInCidr("::ffff:198.18.100.1", "198.18.100.0/24"), "other family");
  t.true(ipInCidr("2001:db8::ffff", parseCidr("2001:db8::/64")));
  t.is(ipWithPrefix("198.18.100.7", "198.18.100.0/24"), "198.18.100.7/24");
  t.is(ipWithPrefix("2001:DB8::7", "2001:db8::/64"), "2001:db8::7/64");
  t.throws(() => ipWithPrefix("198.18.101.7", "198.18.100.0/24"), { instanceOf: IpamError });
  t.deepEqual(splitIpList(" 198.18.100.7, 198.18.100.8,,"), ["198.18.100.7", "198.18.100.8"]);
});

// ---------------------------------------------------------------------------------------------
// The API rule (Kubernetes CEL isIP/isCIDR), shared with admission (lib/validation)

test("tryParseIp accepts canonical IPv4 and IPv6", t => {
  t.deepEqual(tryParseIp("198.18.100.7"), { family: 4, value: 0xc6126407n });
  t.deepEqual(tryParseIp("0.0.0.0"), { family: 4, value: 0n });
  t.deepEqual(tryParseIp("2001:db8::1"), { family: 6, value: (0x20010db8n << 96n) | 1n });
  t.is(tryParseIp("::")?.value, 0n);
  t.is(tryParseIp("64:ff9b::198.18.0.1")?.family, 6);
});

test("tryParseIp is as strict as the apiserver's CEL isIP", t => {
  // With the list of "malformed addresses are rejected with a typed error" above.
  for (const bad of [
    "010.0.0.1",
    "10",
    "0x0a.0.0.1",
    "1.2.3.4 ",
    "::ffff:198.18.0.1",
    "::01.2.3.4",
    "2001:db8::g",
  ]) {
    t.is(tryParseIp(bad), undefined, bad);
    t.false(isIp(bad), bad);
  }
});

test("IPv4-mapped IPv6 is refused by value; IPv4-compatible IPv6 is an ordinary address", t => {
  // CEL isIP (Go netip) refuses Is4In6 whatever the spelling ...
  for (const mapped of ["::ffff:198.18.0.1", "::FFFF:c612:1", "0:0:0:0:0:ffff:198.18.0.1"]) {
    t.true(isIpv4Mapped(mapped), mapped);
    t.is(tryParseIp(mapped), undefined, mapped);
    const e = t.throws(() => parseIp(mapped), { instanceOf: IpamError });
    t.regex(e?.message ?? "", /IPv4-mapped IPv6 address.*write the IPv4 address/);
  }
  // ... and accepts ::a.b.c.d, the same address as ::hhhh:hhhh (ipaddr.js 2.5 misreads it as
  // mapped, so the former validation parser refused one spelling and accepted the other).
  t.deepEqual(tryParseIp("::198.18.0.1"), tryParseIp("::c612:1"));
  t.is(tryParseIp("::1.2.3.4")?.value, 0x01020304n);
  t.false(isIpv4Mapped("::1.2.3.4"));
  t.false(isIpv4Mapped("198.18.0.1"));
  t.false(isIpv4Mapped("not an address"));
  // The plain conversions read any address text, mapped ones included.
  t.is(ipFamily("::ffff:198.18.0.1"), 6);
});

test("tryParseIp and bigIntToIp round-trip", t => {
  fc.assert(
    fc.property(fc.ipV4(), s => bigIntToIp(4, tryParseIp(s)!.value) === s),
    { numRuns: 200 },
  );
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), v => {
      const text = bigIntToIp(6, v);
      const back = tryParseIp(text);
      // IPv4-mapped addresses are refused by design.
      return back ? back.value === v : /^::ffff:/.test(text);
    }),
    { numRuns: 200 },
  );
  t.pass();
});

test("tryParsePrefix finds the network, the last address and host bits", t => {
  const p = tryParsePrefix("198.18.100.5/24")!;
  t.is(p.prefixLength, 24);
  t.true(p.hostBitsSet);
  t.is(p.address, ipToBigInt("198.18.100.5"));
  t.is(bigIntToIp(4, p.first), "198.18.100.0");
  t.is(bigIntToIp(4, p.last), "198.18.100.255");
  t.is(formatCidr(p), "198.18.100.0/24");
  t.false(tryParsePrefix("198.18.100.0/24")!.hostBitsSet);
  t.is(formatCidr(tryParsePrefix("2001:DB8:100:0:0::1/64")!), "2001:db8:100::/64");
  t.is(tryParsePrefix("0.0.0.0/0")!.last, 0xffffffffn);
  for (const bad of [
    "198.18.100.0",
    "198.18.100.0/33",
    "198.18.100.0/-1",
    "198.18.100.0/",
    "/24",
    "::/129",
    "1.2.3.4/08",
    "198.18.100.0/24/1",
    "fe80::%eth0/64",
    "::ffff:198.18.100.0/120",
  ]) {
    t.is(tryParsePrefix(bad), undefined, bad);
  }
});

test("parseCidr names an IPv4-mapped network as such", t => {
  const e = t.throws(() => parseCidr("::ffff:198.18.100.0/120"), { instanceOf: IpamError });
  t.regex(e?.message ?? "", /IPv4-mapped IPv6 address "::ffff:198\.18\.100\.0".*IPv4 network/);
});

test("tryParseIpOrPrefix reads an address as its /32 or /128", t => {
  t.deepEqual(tryParseIpOrPrefix("198.18.100.7"), {
    ...parseCidr("198.18.100.7/32"),
    address: ipToBigInt("198.18.100.7"),
    hostBitsSet: false,
  });
  t.is(tryParseIpOrPrefix("2001:db8::7")?.prefixLength, 128);
  t.is(formatCidr(tryParseIpOrPrefix("198.18.100.16/28")!), "198.18.100.16/28");
  t.true(tryParseIpOrPrefix("198.18.100.5/28")!.hostBitsSet);
  for (const bad of ["bogus", "198.18.100.300", "::ffff:198.18.0.1", "198.18.100.0/33", ""]) {
    t.is(tryParseIpOrPrefix(bad), undefined, bad);
  }
});

test("cidrsOverlap and cidrWithin", t => {
  const c = (s: string) => tryParseIpOrPrefix(s)!;
  t.true(cidrsOverlap(c("198.18.100.0/24"), c("198.18.100.128/25")));
  t.true(cidrsOverlap(c("198.18.100.128/25"), c("198.18.100.0/24")), "symmetric");
  t.true(cidrsOverlap(c("198.18.100.0/24"), c("198.18.100.255")));
  t.false(cidrsOverlap(c("198.18.100.0/24"), c("198.18.101.0/24")), "adjacent");
  t.false(cidrsOverlap(c("0.0.0.0/0"), c("::/0")), "families never overlap");
  t.true(cidrWithin(c("198.18.100.16/28"), c("198.18.100.0/24")));
  t.true(cidrWithin(c("198.18.100.0/24"), c("198.18.100.0/24")));
  t.false(cidrWithin(c("198.18.0.0/16"), c("198.18.100.0/24")));
  t.false(cidrWithin(c("198.18.101.1"), c("198.18.100.0/24")));
  t.false(cidrWithin(c("::1"), c("0.0.0.0/0")));
  // Agrees with a brute-force model on small IPv4 prefixes.
  const prefix = fc
    .tuple(fc.integer({ min: 0, max: 63 }), fc.integer({ min: 26, max: 32 }))
    .map(([o, len]) => tryParsePrefix(`198.18.100.${o}/${len}`)!);
  fc.assert(
    fc.property(prefix, prefix, (a, b) => {
      const pts = (p: typeof a) =>
        new Set(
          Array.from({ length: Number(p.last - p.first) + 1 }, (_, i) => p.first + BigInt(i)),
        );
      const [pa, pb] = [pts(a), pts(b)];
      return (
        cidrsOverlap(a, b) === [...pa].some(x => pb.has(x)) &&
        cidrWithin(a, b) === [...pa].every(x => pb.has(x))
      );
    }),
    { numRuns: 300 },
  );
});

test("networkAndBroadcast: IPv4 up to /30 only (RFC 3021), never IPv6", t => {
  const ends = (s: string) => networkAndBroadcast(parseCidr(s)).map(v => bigIntToIp(4, v));
  t.deepEqual(ends("198.18.100.0/24"), ["198.18.100.0", "198.18.100.255"]);
  t.deepEqual(ends("198.18.100.4/30"), ["198.18.100.4", "198.18.100.7"]);
  t.deepEqual(ends("198.18.100.4/31"), []);
  t.deepEqual(ends("198.18.100.4/32"), []);
  t.deepEqual(networkAndBroadcast(parseCidr("2001:db8::/64")), []);
});
