// The short fuzz run of `npm test` (the full 10,000 cases: `npm run fuzz`, bench/fuzz.ts):
// 1,000 generated MacvlanSubnets and Pods, hostile and plain, through the real webhook as dry
// runs, a sample created for real. Each is accepted or denied naming the field; no 500, no
// webhook failure, no timeout; the module's pods never restart; nothing half-made is left.
import anyTest, { TestFn } from "ava";
import { withCluster } from "./helpers";
import { runFuzz, summary } from "../../bench/fuzz/run";

const test = anyTest as TestFn;
const cluster = withCluster(test, {
  nodes: 1,
  module: { agent: false, env: { MACVLAN_RESYNC_SECONDS: "5", MACVLAN_RESERVED_TTL_SECONDS: "8" } },
});

test.serial(
  "1,000 fuzzed subnets and pods: answered, never crashed, nothing half-made left",
  async t => {
    const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
    const report = await runFuzz(cluster().api, {
      cases: Number(process.env.FUZZ_CASES ?? 1000),
      seed,
      realEvery: 25,
      realSubnets: 10,
      concurrency: 8,
      log: line => t.log(line),
    });
    t.log(summary(report));
    t.deepEqual(
      report.failures.map(f => `${f.kind} ${f.outcome}: ${f.message}`),
      [],
      `seed ${seed}`,
    );
    for (const [pod, n] of Object.entries(report.restartsAfter))
      t.is(n, report.restartsBefore[pod] ?? 0, `${pod} restarted`);
    t.deepEqual(report.leftovers, { leasesWithoutPod: [], nadsWithoutSubnet: [], subnetsLeft: [] });
    t.true(
      report.results.some(r => r.outcome === "accepted"),
      "some cases were accepted",
    );
    t.true(
      report.results.some(r => r.outcome === "denied by the module (field named)"),
      "some cases were denied by the module",
    );
  },
);
