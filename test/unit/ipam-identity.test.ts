import test from "ava";
import fc from "fast-check";
import { IpamError, bigIntToIp, isDns1123Subdomain, leaseName, macFor } from "../../lib/ipam";

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const firstOctet = (mac: string) => parseInt(mac.slice(0, 2), 16);

test("lease names for IPv4 and IPv6", t => {
  t.is(leaseName("lan", "198.18.100.7"), "lan-198-18-100-7");
  t.is(leaseName("lan", "2001:DB8::7"), "lan-2001-0db8-0000-0000-0000-0000-0000-0007");
  t.is(leaseName("lab.v6", "::"), "lab.v6-0000-0000-0000-0000-0000-0000-0000-0000");
});

test("lease names are valid DNS-1123 subdomains and injective", t => {
  const subnet = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?$/);
  const ip = fc.oneof(
    fc.integer({ min: 0, max: 0xffffffff }).map(n => bigIntToIp(4, BigInt(n))),
    fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }).map(n => bigIntToIp(6, n)),
  );
  fc.assert(
    fc.property(subnet, ip, subnet, ip, (s1, ip1, s2, ip2) => {
      const n1 = leaseName(s1, ip1);
      const n2 = leaseName(s2, ip2);
      return (
        isDns1123Subdomain(n1) && n1.length <= 253 && (n1 === n2) === (s1 === s2 && ip1 === ip2)
      );
    }),
    { numRuns: 3000 },
  );
  // The tricky cases: a subnet name that looks like part of an address.
  t.not(leaseName("a-1", "2.3.4.5"), leaseName("a", "1.2.3.4"));
  t.not(leaseName("x-2001-0db8-0000-0000", "0.0.0.1"), leaseName("x", "2001:db8::1"));
  t.pass();
});

test("lease names that would be invalid are refused", t => {
  const e = t.throws(() => leaseName("a".repeat(220), "2001:db8::1"), { instanceOf: IpamError });
  t.is(e?.code, "Invalid");
  t.regex(e?.message ?? "", /DNS-1123/);
  t.throws(() => leaseName("Lan", "198.18.100.7"), { instanceOf: IpamError });
  t.is(leaseName("a".repeat(213), "2001:db8::1").length, 253);
});

test("MACs are lowercase, unicast, locally administered and stable", t => {
  const mac = macFor("lan", "198.18.100.7");
  t.regex(mac, MAC);
  t.is(firstOctet(mac) & 0x01, 0, "unicast");
  t.is(firstOctet(mac) & 0x02, 0x02, "locally administered");
  t.is(macFor("lan", "198.18.100.7"), mac, "stable");
  t.is(mac, "6a:cf:c6:12:64:07", "pinned: changing the derivation changes running pods' MACs");
  t.is(
    macFor("v6", "2001:db8::7"),
    macFor("v6", "2001:DB8:0::7"),
    "IPv6 text form does not matter",
  );
  t.not(macFor("lan", "198.18.100.7"), macFor("wan", "198.18.100.7"));
  fc.assert(
    fc.property(
      fc.string({ maxLength: 20 }),
      fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }),
      (s, n) => {
        const m = macFor(s, bigIntToIp(6, n));
        return MAC.test(m) && (firstOctet(m) & 0x03) === 0x02;
      },
    ),
    { numRuns: 500 },
  );
});

test("IPv4 MACs never collide inside a subnet", t => {
  const seen = new Set<string>();
  for (let i = 0; i < 65536; i++)
    seen.add(macFor("lan", bigIntToIp(4, (198n << 24n) | (18n << 16n) | BigInt(i))));
  t.is(seen.size, 65536);
});
