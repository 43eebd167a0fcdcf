import test from "ava";
import fc from "fast-check";

import { formatAddr, formatNetwork, parseAddr, parsePrefix } from "../../lib/validation/addr";
import { contains, normalize, size, subtract } from "../../lib/validation/intervals";
import { isDnsLabel, isValidInterfaceName } from "../../lib/validation/names";

test("parseAddr accepts canonical IPv4 and IPv6", t => {
  t.deepEqual(parseAddr("198.18.100.7"), { family: 4, value: 0xc6126407n });
  t.deepEqual(parseAddr("0.0.0.0"), { family: 4, value: 0n });
  t.deepEqual(parseAddr("2001:db8::1"), { family: 6, value: (0x20010db8n << 96n) | 1n });
  t.is(parseAddr("::")?.value, 0n);
  t.is(parseAddr("64:ff9b::198.18.0.1")?.family, 6);
});

test("parseAddr is as strict as the apiserver's CEL isIP", t => {
  for (const bad of [
    "010.0.0.1",
    "1.2.3",
    "10",
    "0x0a.0.0.1",
    "256.1.1.1",
    " 1.2.3.4",
    "1.2.3.4 ",
    "fe80::1%eth0",
    "::ffff:198.18.0.1",
    "::1.2.3",
    "::01.2.3.4",
    "2001:db8::g",
    "",
    "1.2.3.4/32",
  ]) {
    t.is(parseAddr(bad), undefined, bad);
  }
});

test("parsePrefix finds the network, the last address and host bits", t => {
  const p = parsePrefix("198.18.100.5/24")!;
  t.is(p.bits, 24);
  t.true(p.hostBitsSet);
  t.is(formatAddr({ family: 4, value: p.first }), "198.18.100.0");
  t.is(formatAddr({ family: 4, value: p.last }), "198.18.100.255");
  t.is(formatNetwork(p), "198.18.100.0/24");
  t.false(parsePrefix("198.18.100.0/24")!.hostBitsSet);
  t.is(formatNetwork(parsePrefix("2001:DB8:100:0:0::1/64")!), "2001:db8:100::/64");
  t.is(parsePrefix("0.0.0.0/0")!.last, 0xffffffffn);
  for (const bad of [
    "198.18.100.0",
    "198.18.100.0/33",
    "198.18.100.0/-1",
    "198.18.100.0/",
    "/24",
    "::/129",
    "1.2.3.4/08",
  ]) {
    t.is(parsePrefix(bad), undefined, bad);
  }
});

test("formatAddr round-trips", t => {
  fc.assert(
    fc.property(fc.ipV4(), s => formatAddr(parseAddr(s)!) === s),
    { numRuns: 200 },
  );
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), v => {
      const text = formatAddr({ family: 6, value: v });
      const back = parseAddr(text);
      // IPv4-mapped addresses are refused by design.
      return back ? back.value === v : /^::ffff:/.test(text);
    }),
    { numRuns: 200 },
  );
  t.pass();
});

test("interval sets agree with a brute-force model", t => {
  const iv = fc
    .tuple(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 40 }))
    .map(([a, b]) => ({
      lo: BigInt(Math.min(a, b)),
      hi: BigInt(Math.max(a, b)),
    }));
  fc.assert(
    fc.property(fc.array(iv, { maxLength: 5 }), fc.array(iv, { maxLength: 5 }), (keep, drop) => {
      const model = new Set<number>();
      for (const i of keep) for (let v = Number(i.lo); v <= Number(i.hi); v++) model.add(v);
      for (const i of drop) for (let v = Number(i.lo); v <= Number(i.hi); v++) model.delete(v);
      const got = subtract(normalize(keep), normalize(drop));
      if (size(got) !== BigInt(model.size)) return false;
      for (let v = 0; v <= 41; v++) if (contains(got, BigInt(v)) !== model.has(v)) return false;
      return got.every((g, i) => i === 0 || got[i - 1].hi + 1n < g.lo);
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test("interface names and DNS labels", t => {
  t.true(isValidInterfaceName("eth0"));
  t.true(isValidInterfaceName("a".repeat(15)));
  t.false(isValidInterfaceName("a".repeat(16)));
  t.false(isValidInterfaceName(""));
  t.false(isValidInterfaceName("é".repeat(8)), "15 bytes, not 15 characters");
  t.false(isValidInterfaceName(undefined));
  t.true(isDnsLabel("team-a"));
  t.false(isDnsLabel("team.a"));
  t.false(isDnsLabel("a-"));
});
