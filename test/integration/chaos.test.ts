// The short chaos run of `npm test` (the full one: `npm run chaos`, bench/chaos.ts): a few hundred
// pod create/delete cycles across two Deployments, a StatefulSet and fixed-IP pods while every
// fault of bench/chaos/faults.ts happens once: kill -9 an admission replica mid-request, the
// watcher and an agent, restart kube-apiserver and etcd, cut a node's LAN link for 30 s. The
// product converges after each, no sample ever sees a duplicate address, and after the load, the
// reclaim TTL and one resync: no duplicate, no leaked lease, no pod without its lease, every
// node's routes match its pods, every subnet's status matches its leases.
import anyTest, { TestFn } from "ava";
import { withCluster } from "./helpers";
import { CHAOS_ENV, FAULTS, chaosSummary, fixedIps, runChaos } from "../../bench/chaos/run";

const test = anyTest as TestFn;
const cluster = withCluster(test, { nodes: 2, module: { env: CHAOS_ENV } });

test.serial(
  "every fault once during create/delete cycles: converged, nothing duplicated or leaked",
  async t => {
    t.timeout(30 * 60_000);
    const report = await runChaos(cluster(), {
      cycles: Number(process.env.CHAOS_CYCLES ?? 200),
      faults: FAULTS,
      load: {
        deploymentReplicas: 5,
        statefulSetReplicas: 3,
        fixedIps: fixedIps(3),
        maxNotReady: 6,
      },
      reservedTtlSeconds: Number(CHAOS_ENV.MACVLAN_RESERVED_TTL_SECONDS),
      resyncSeconds: Number(CHAOS_ENV.MACVLAN_RESYNC_SECONDS),
      convergeTimeoutMs: 240_000,
      log: line => t.log(line),
    });
    t.log(chaosSummary(report));
    t.true(report.cycles >= Number(process.env.CHAOS_CYCLES ?? 200), "all cycles ran");
    t.deepEqual(
      report.faults.map(f => f.fault),
      [...FAULTS],
      "every fault was injected once",
    );
    for (const f of report.faults) {
      t.false(f.did.startsWith("injection failed"), `${f.fault}: ${f.did}`);
      t.not(f.convergedAfter, undefined, `${f.fault} converged: ${f.did}`);
    }
    t.deepEqual(report.sampled.duplicates, [], "no sample saw a duplicate address");
    t.true(report.sampled.samples > 10, "duplicates were sampled during the run");
    t.deepEqual(report.final.duplicates, [], "duplicate addresses");
    t.deepEqual(report.final.leaks, [], "leases without a live pod beyond the reclaim TTL");
    t.deepEqual(report.final.unleased, [], "pods with an address but no lease");
    t.deepEqual(report.final.routes, [], "node routes that do not match the node's pods");
    t.deepEqual(report.final.status, [], "subnet status counts that do not match the leases");
  },
);
