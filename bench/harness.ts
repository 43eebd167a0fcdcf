// What the cluster benchmarks share: a local cluster with the module running (two admission
// replicas and a watcher), torn down whatever happens, and a timestamped log.
import { Cluster, startCluster } from "../test/integration/helpers";
import * as moduleRunner from "../hack/module/module";

export const log = (msg: string) =>
  console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);

export function runClusterBench(nodes: number, body: (c: Cluster) => Promise<void>): void {
  const run = async () => {
    log(`starting a ${nodes}-node cluster with the module`);
    const c = await startCluster({ nodes });
    try {
      moduleRunner.install(2);
      await moduleRunner.start(2);
      await body(c);
    } finally {
      await moduleRunner.stop();
      await c.down();
    }
  };
  run().catch(e => {
    console.error(`bench failed: ${(e as Error).message}`);
    process.exit(1);
  });
}
