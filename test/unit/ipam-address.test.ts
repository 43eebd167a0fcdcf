import test from "ava";
import fc from "fast-check";
import ipaddr from "ipaddr.js";
import {
  IpamError,
  bigIntToIp,
  expandIpv6,
  ipFamily,
  ipInCidr,
  ipToBigInt,
  ipWithPrefix,
  isIp,
  normalizeIp,
  parseCidr,
  prefixLength,
  splitIpList,
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
