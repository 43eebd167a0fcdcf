// The agent reads addresses with lib/ipam (agent/ip.ts wraps it): the same text must mean the
// same address to admission, the allocator and the agent.
import test from "ava";
import fc from "fast-check";
import { canonicalIP, cidrContains, familyOf, hostPrefix, parseCIDR } from "../../agent/ip";
import { bigIntToIp, expandIpv6, isIp, normalizeIp, tryParsePrefix } from "../../lib/ipam";

test("agent/ip reads the texts lib/ipam reads, and no others", t => {
  t.is(canonicalIP("::198.18.0.1"), "::c612:1", "IPv4-compatible form: the address it spells");
  t.is(canonicalIP("::c612:1"), "::c612:1");
  t.is(canonicalIP("fe80::1%eth0"), undefined, "zone ids are not pod addresses");
  t.is(canonicalIP("::ffff:198.18.0.1"), undefined, "IPv4-mapped is refused");
  t.is(familyOf("::ffff:198.18.0.1"), undefined);
  t.is(canonicalIP(" 2001:DB8:0:0::7 "), "2001:db8::7");
  t.is(canonicalIP("198.018.0.1"), undefined, "no leading zeros (octal ambiguity)");
  t.is(familyOf("198.18.0.1"), 4);
  t.is(familyOf("2001:db8::1"), 6);
  t.is(familyOf("eth0"), undefined);
  t.is(parseCIDR("2001:db8::/064"), undefined, "prefix lengths without leading zeros");
  const c = parseCIDR("::c612:0/120")!;
  t.true(cidrContains(c, "::198.18.0.1"));
  t.false(cidrContains(c, "198.18.0.1"), "another family");
  t.false(cidrContains(parseCIDR("198.18.100.0/24")!, "::ffff:198.18.100.7"));
  t.true(cidrContains(parseCIDR("198.18.100.7/24")!, "198.18.100.200"), "host bits are masked");
  t.is(hostPrefix("198.18.100.5"), "198.18.100.5/32");
  t.is(hostPrefix("2001:db8::5"), "2001:db8::5/128");
  t.is(hostPrefix("::ffff:198.18.100.5"), "::ffff:198.18.100.5/128");
});

const v6Texts = (v: bigint): string[] => {
  const low = Number(v & 0xffffffffn);
  const dotted = `${low >>> 24}.${(low >>> 16) & 255}.${(low >>> 8) & 255}.${low & 255}`;
  const head = expandIpv6(v).split(":").slice(0, 6).join(":");
  return [bigIntToIp(6, v), expandIpv6(v), bigIntToIp(6, v).toUpperCase(), `${head}:${dotted}`];
};

test("agent/ip agrees with lib/ipam on random address texts", t => {
  const text = fc.oneof(
    fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }).map(v => [bigIntToIp(4, v)]),
    fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }).map(v6Texts),
    // Small values: the :: forms, IPv4-compatible and IPv4-mapped spellings.
    fc.bigInt({ min: 0n, max: (1n << 49n) - 1n }).map(v6Texts),
    fc.string({ maxLength: 12 }).map(s => [s]),
  );
  fc.assert(
    fc.property(text, fc.integer({ min: 0, max: 128 }), (texts, len) => {
      for (const s of texts) {
        const want = isIp(s) ? normalizeIp(s) : undefined;
        if (canonicalIP(s) !== want) return false;
        const cidr = `${s}/${len}`;
        if (JSON.stringify(parseCIDR(cidr), big) !== JSON.stringify(tryParsePrefix(cidr), big))
          return false;
      }
      return true;
    }),
    { numRuns: 500 },
  );
  t.pass();
});

const big = (_k: string, v: unknown) => (typeof v === "bigint" ? v.toString() : v);
