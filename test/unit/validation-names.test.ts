// The name rules of admission. The address, CIDR and interval tests that were here moved with
// the code to lib/ipam: test/unit/ipam-address.test.ts ("tryParseIp ...", "tryParsePrefix
// ...", round-trip) and test/unit/ipam-intervals.test.ts (brute-force model).
import test from "ava";

import { isDnsLabel, isValidInterfaceName } from "../../lib/validation/names";

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
