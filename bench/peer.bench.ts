// `npm run bench:peer`: the same pods (default 1,000 = 10 Deployments x 100) on one local cluster
// with real kubelets, each with a macvlan net1 on eth0, in three set-ups one after another:
//   floor         a plain macvlan NAD per node with host-local IPAM on the node's slice of the pool
//   whereabouts   Whereabouts v0.9.2 (hack/build-peers.sh), one NAD on the whole pool
//   pepr-macvlan  npx pepr deploy and the agent (hack/module/deploy.ts), a MacvlanSubnet on the pool
// and prints one table with the ratios to the floor, plus CPU and peak RSS per component. The
// options (pod count, exact pool, hold time, …) are in bench/peer/config.ts. Appends the tables to
// bench/results/<date>-peer.md. A benchmark: it prints figures and asserts nothing about time.
import * as fs from "node:fs";
import * as path from "node:path";
import { log } from "./harness";
import { startCluster } from "../test/integration/helpers";
import { PeerOptions, peerOptions } from "./peer/config";
import {
  header,
  machine,
  mainTable,
  usageTable,
  warningMessages,
  writesDetail,
} from "./peer/report";
import { SetupResult, runSetup } from "./peer/run";
import { setups } from "./peer/setups";

function report(o: PeerOptions, results: SetupResult[], started: Date): string {
  return [
    `## bench:peer ${started.toISOString().slice(0, 16)}Z${o.exact ? " — exact pool" : ""}`,
    "",
    `Machine: ${machine()}.`,
    `Run: ${header(o)}.`,
    "",
    mainTable(results),
    "",
    "CPU seconds (utime+stime over the set-up's window) and peak RSS (highest sum over 2 s samples):",
    "",
    usageTable(results),
    "",
    "API writes per pod by verb and resource (top six):",
    "",
    writesDetail(results),
    "",
    "Warning events (one message per reason):",
    "",
    warningMessages(results),
    "",
  ].join("\n");
}

async function main(): Promise<void> {
  const o = peerOptions(process.argv.slice(2));
  const started = new Date();
  log(`bench:peer: ${header(o)}`);
  const c = await startCluster({ nodes: o.nodes });
  const results: SetupResult[] = [];
  try {
    for (const s of setups(o)) {
      results.push(await runSetup(c, o, s));
      console.log(`\n${mainTable(results)}\n`);
    }
  } finally {
    if (results.length) {
      const text = report(o, results, started);
      console.log(`\n${text}`);
      if (o.writeResults) {
        fs.mkdirSync(o.resultsDir, { recursive: true });
        const file = path.join(o.resultsDir, `${started.toISOString().slice(0, 10)}-peer.md`);
        const head = fs.existsSync(file) ? "" : "# bench:peer results\n\n";
        fs.appendFileSync(file, `${head}${text}\n`);
        log(`appended to ${path.relative(process.cwd(), file)}`);
      }
    }
    await c.down();
  }
}

main().catch(e => {
  console.error(`bench:peer failed: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
