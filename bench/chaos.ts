// `npm run chaos`: pod create/delete cycles across Deployments, a StatefulSet and fixed-IP pods
// on the local cluster (2 kubelet nodes, the module as a user installs it, the agent), while
// bench/chaos/faults.ts kills and restarts the module's parts, the control plane and a node's
// LAN link one after another; prints the fault table and the final checks (bench/chaos/checks.ts).
// Needs root (network namespaces) and waits for the machine-wide cluster lock.
// CHAOS_CYCLES (default 2000) for a shorter run, CHAOS_MAX_MINUTES to stop the load earlier (the
// faults are then spread over that time); CHAOS_REPLICAS, CHAOS_FIXED for the load's shape.
import { startCluster } from "../test/integration/helpers/cluster";
import { deploy } from "../hack/module/deploy";
import { CHAOS_ENV, FAULTS, chaosSummary, cleanRun, fixedIps, runChaos } from "./chaos/run";

async function main(): Promise<number> {
  const cycles = Number(process.env.CHAOS_CYCLES ?? 2000);
  const replicas = Number(process.env.CHAOS_REPLICAS ?? 8);
  const cluster = await startCluster({ nodes: 2 });
  try {
    const r = await deploy({ env: CHAOS_ENV });
    console.log(
      `module Ready in ${r.moduleSeconds.toFixed(0)} s, agent in ${r.agentSeconds?.toFixed(0)} s`,
    );
    const report = await runChaos(cluster, {
      cycles,
      maxSeconds: process.env.CHAOS_MAX_MINUTES
        ? Number(process.env.CHAOS_MAX_MINUTES) * 60
        : undefined,
      faults: FAULTS,
      load: {
        deploymentReplicas: replicas,
        statefulSetReplicas: Math.max(2, replicas / 2),
        fixedIps: fixedIps(Number(process.env.CHAOS_FIXED ?? 4)),
        maxNotReady: 8,
      },
      reservedTtlSeconds: Number(CHAOS_ENV.MACVLAN_RESERVED_TTL_SECONDS),
      resyncSeconds: Number(CHAOS_ENV.MACVLAN_RESYNC_SECONDS),
      log: line => console.log(`[chaos ${new Date().toISOString().slice(11, 19)}] ${line}`),
    });
    console.log(chaosSummary(report));
    return cleanRun(report) ? 0 : 1;
  } finally {
    await cluster.down();
  }
}

if (require.main === module)
  void main().then(
    code => process.exit(code),
    e => {
      console.error(e);
      process.exit(1);
    },
  );
