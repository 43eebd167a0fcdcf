import test from "ava";
import fc from "fast-check";
import { checkFixedMac, macFor, macHeldByOther, parseUnicastMac } from "../../lib/ipam";

const error = (text: string): string => {
  const r = parseUnicastMac(text);
  if (r.ok) throw new Error(`${text} was accepted`);
  return r.error;
};

test("parseUnicastMac returns the canonical lower-case colon form", t => {
  t.deepEqual(parseUnicastMac("02:AB:cd:00:0F:01"), { ok: true, mac: "02:ab:cd:00:0f:01" });
  t.deepEqual(parseUnicastMac("02-ab-cd-00-0f-01"), { ok: true, mac: "02:ab:cd:00:0f:01" });
  t.deepEqual(parseUnicastMac(" 00:1b:21:3c:4d:5e "), { ok: true, mac: "00:1b:21:3c:4d:5e" });
});

test("parseUnicastMac refuses group, broadcast and all-zero MACs, saying what to use", t => {
  t.regex(error("01:00:5e:00:00:fb"), /multicast MAC.*I\/G bit.*e\.g\. 00:00:5e:00:00:fb/);
  t.regex(error("03:00:00:00:00:01"), /multicast.*e\.g\. 02:00:00:00:00:01/);
  t.regex(error("FF:FF:FF:FF:FF:FF"), /ff:ff:ff:ff:ff:ff is the broadcast MAC address/);
  t.regex(error("00:00:00:00:00:00"), /all-zero MAC address/);
});

test("parseUnicastMac refuses what is not six two-digit octets", t => {
  for (const bad of [
    "",
    "02:42:c6:12:64",
    "02:42:c6:12:64:07:08",
    "02:42:c6:12:64:7",
    "0242.c612.6407",
    "024c612647",
    "02:42-c6:12:64:07",
    "02:42:c6:12:64:0g",
    "02:42:c6:12:64:07/48",
    "00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:01",
  ]) {
    t.regex(
      error(bad),
      /is not a MAC address: write six two-digit hex octets separated by colons/,
      bad,
    );
  }
  t.false(parseUnicastMac(undefined as unknown as string).ok);
});

test("parseUnicastMac agrees with the I/G bit on random octets", t => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 6, maxLength: 6 }), o => {
      const text = o.map(x => x.toString(16).padStart(2, "0").toUpperCase()).join(":");
      const r = parseUnicastMac(text);
      const unicast = (o[0] & 1) === 0 && o.some(x => x !== 0);
      return r.ok === unicast && (!r.ok || r.mac === text.toLowerCase());
    }),
  );
  t.pass();
});

test("derived MACs are valid unicast MACs", t => {
  for (const ip of ["198.18.100.7", "2001:db8::7"]) {
    const mac = macFor("lan", ip);
    t.deepEqual(parseUnicastMac(mac), { ok: true, mac });
  }
});

test("macHeldByOther compares canonically and skips the lease being written", t => {
  const leases = [
    { name: "lan-198-18-100-7", mac: "02:AB:CD:00:00:07" },
    { name: "lan-198-18-100-8" },
    { name: "lan-198-18-100-9", mac: "not a mac" },
  ];
  t.is(macHeldByOther("02:ab:cd:00:00:07", leases)?.name, "lan-198-18-100-7");
  t.is(macHeldByOther("02-ab-cd-00-00-07", leases)?.name, "lan-198-18-100-7");
  t.is(macHeldByOther("02:ab:cd:00:00:07", leases, "lan-198-18-100-7"), undefined);
  t.is(macHeldByOther("02:ab:cd:00:00:08", leases), undefined);
  t.is(macHeldByOther("NOT A MAC", leases)?.name, "lan-198-18-100-9");
  t.is(macHeldByOther("02:ab:cd:00:00:07", []), undefined);
});

test("checkFixedMac: valid, unicast and not held, or a message naming the holder", t => {
  const leases = [{ name: "lan-198-18-100-7", mac: "02:ab:cd:00:00:07" }];
  t.deepEqual(checkFixedMac("02:AB:CD:00:00:08", "lan", leases), {
    ok: true,
    mac: "02:ab:cd:00:00:08",
  });
  const held = checkFixedMac("02:AB:CD:00:00:07", "lan", leases);
  t.false(held.ok);
  t.regex(
    held.ok ? "" : held.error,
    /MAC 02:ab:cd:00:00:07 is already used in MacvlanSubnet "lan" by MacvlanLease lan-198-18-100-7: choose another MAC/,
  );
  t.true(checkFixedMac("02:ab:cd:00:00:07", "lan", leases, "lan-198-18-100-7").ok);
  const multicast = checkFixedMac("01:ab:cd:00:00:07", "lan", leases);
  t.regex(multicast.ok ? "" : multicast.error, /multicast/);
});
