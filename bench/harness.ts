// What the cluster benchmarks share: a local cluster on real kubelets with the module installed as
// a user installs it (`npx pepr deploy`: two admission replicas and a watcher; the agent DaemonSet
// when asked), torn down whatever happens, and a timestamped log.
import { Cluster, startCluster } from "../test/integration/helpers";
import { deploy } from "../hack/module/deploy";

export const log = (msg: string) =>
  console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);

export function runClusterBench(
  nodes: number,
  body: (c: Cluster) => Promise<void>,
  opts: { agent?: boolean; env?: Record<string, string> } = {},
): void {
  const run = async () => {
    log(`starting a ${nodes}-node cluster with the module`);
    const c = await startCluster({ nodes });
    try {
      await deploy({ agent: opts.agent ?? false, env: opts.env });
      await body(c);
    } finally {
      await c.down();
    }
  };
  run().catch(e => {
    console.error(`bench failed: ${(e as Error).message}`);
    process.exit(1);
  });
}
