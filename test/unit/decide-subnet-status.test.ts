// Subnet status from its leases: counts that add up, and a Ready condition a user can act on.
import test from "ava";
import { countStatus } from "../../lib/decide/subnet-status";
import { NOW, lease, subnet } from "./helpers/objects";

const small = subnet("lan", { ranges: [{ start: "198.18.100.10", end: "198.18.100.13" }] });

test("allocated counts Reserved and Bound leases; released ones are free; the sum is the total", t => {
  const leases = [
    lease({ ip: "198.18.100.10", phase: "Bound" }),
    lease({ ip: "198.18.100.11" }),
    lease({ ip: "198.18.100.12", phase: "Released", releasedAt: "2026-12-01T11:59:00Z" }),
  ];
  const status = countStatus(small, leases, NOW);
  t.deepEqual([status.total, status.allocated, status.free], ["4", 2, "2"]);
  t.is(status.conditions?.[0].reason, "Available");
  t.is(status.conditions?.[0].lastTransitionTime, NOW.toISOString());
});

test("a full subnet is Exhausted and says how to grow; a broken spec says what is wrong", t => {
  const full = ["10", "11", "12", "13"].map(n => lease({ ip: `198.18.100.${n}`, phase: "Bound" }));
  const status = countStatus(small, full, NOW);
  t.is(status.conditions?.[0].reason, "Exhausted");
  t.regex(status.conditions![0].message, /grow spec.ranges or spec.cidr/);
  const broken = countStatus(subnet("lan", { cidr: "198.18.100.0/33" }), [], NOW);
  t.is(broken.conditions?.[0].reason, "InvalidSpec");
});

test("an IPv6 /64 counts out the subnet-router and RFC 2526 anycast addresses", t => {
  const v6 = subnet("lan6", { cidr: "2001:db8:100::/64" });
  t.is(countStatus(v6, [], NOW).total, (2n ** 64n - 129n).toString());
});

test("the transition time is kept while Ready does not change", t => {
  const first = countStatus(small, [], NOW);
  const later = countStatus(
    { ...small, status: first },
    [lease({ ip: "198.18.100.10" })],
    new Date("2026-12-02T00:00:00Z"),
  );
  t.is(later.conditions?.[0].lastTransitionTime, NOW.toISOString());
});
