// `npm run fuzz`: 10,000 fuzzed MacvlanSubnets and Pods (bench/fuzz/cases.ts) through the real
// webhook on the local cluster with the module installed; prints counts by outcome. Needs root
// (network namespaces) and the cluster lock: `flock /tmp/pmv-cluster.lock npm run fuzz`.
// FUZZ_CASES, FUZZ_SEED and FUZZ_CONCURRENCY override the defaults.
import { startCluster } from "../test/integration/helpers/cluster";
import { deploy } from "../hack/module/deploy";
import { runFuzz, summary } from "./fuzz/run";

async function main() {
  const cases = Number(process.env.FUZZ_CASES ?? 10_000);
  const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
  const cluster = await startCluster({ nodes: 1 });
  let failed = true;
  try {
    await deploy({
      agent: false,
      env: { MACVLAN_RESYNC_SECONDS: "5", MACVLAN_RESERVED_TTL_SECONDS: "8" },
    });
    const report = await runFuzz(cluster.api, {
      cases,
      seed,
      realEvery: 50,
      realSubnets: 40,
      concurrency: Number(process.env.FUZZ_CONCURRENCY ?? 8),
      log: line => console.log(line),
    });
    console.log(summary(report));
    const restarted = Object.entries(report.restartsAfter).some(
      ([pod, n]) => n > (report.restartsBefore[pod] ?? 0),
    );
    const l = report.leftovers;
    failed =
      report.failures.length > 0 ||
      restarted ||
      l.leasesWithoutPod.length + l.nadsWithoutSubnet.length + l.subnetsLeft.length > 0;
  } finally {
    await cluster.down();
  }
  process.exit(failed ? 1 : 0);
}

void main().catch(e => {
  console.error(e);
  process.exit(1);
});
