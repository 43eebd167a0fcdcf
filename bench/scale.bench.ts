// `npm run bench:scale`: the local cluster with the module on 2 real kubelet nodes and kwok
// (hack/build-kwok.sh) simulating 500 nodes; 20 MacvlanSubnets (IPv4 /18s and IPv6 /64s), one
// opted-in namespace each, and pods created in phases (default 1,000 then 10,000 in all). At each
// phase: admission p50/p99, time until all leases are Bound, watcher and replica RSS, one resync's
// duration and API requests, and an admission replica's restart to Ready; then the growth from
// the first phase to the last and which of the targets were met. Options: bench/scale/config.ts.
// Writes bench/results/<date>-scale.md. A benchmark: it prints figures and asserts nothing.
import * as fs from "node:fs";
import * as path from "node:path";
import { log } from "./harness";
import { Cluster, sleep, startCluster } from "../test/integration/helpers";
import { deploy } from "../hack/module/deploy";
import { ScaleOptions, scaleOptions } from "./scale/config";
import { Kwok, createFakeNodes } from "./scale/kwok";
import { ModuleRss, moduleRss } from "./scale/measure";
import { createSubnets } from "./scale/objects";
import { runPhase } from "./scale/phase";
import { PhaseResult, growthTable, phaseTable, runHeader, targets } from "./scale/report";

function report(o: ScaleOptions, started: Date, phases: PhaseResult[], baseline?: ModuleRss) {
  return [
    runHeader(o, started),
    "",
    phaseTable(phases, baseline),
    "",
    ...(phases.length > 1
      ? [
          `Growth from ${phases[0].pods} to ${phases[phases.length - 1].pods} pods:`,
          "",
          growthTable(phases),
          "",
        ]
      : ["Growth: only one phase finished.", ""]),
    "Targets:",
    "",
    targets(phases),
    "",
  ].join("\n");
}

async function measureAll(
  c: Cluster,
  o: ScaleOptions,
  phases: PhaseResult[],
  state: { baseline?: ModuleRss },
): Promise<void> {
  const t = await createFakeNodes(c, o.nodes);
  log(`${o.nodes} kwok nodes Ready in ${t.toFixed(1)} s`);
  await createSubnets(c, o.subnets);
  log(`${o.subnets} MacvlanSubnets Ready`);
  await sleep(10_000);
  const baseline = await moduleRss(c);
  state.baseline = baseline;
  let from = 0;
  for (const to of o.phases) {
    phases.push(await runPhase(c, o, from, to));
    from = to;
    console.log(`\n${phaseTable(phases, baseline)}\n`);
  }
}

function writeResults(o: ScaleOptions, started: Date, phases: PhaseResult[], baseline?: ModuleRss) {
  if (!phases.length) return;
  const text = report(o, started, phases, baseline);
  console.log(`\n${text}`);
  if (!o.writeResults) return;
  fs.mkdirSync(o.resultsDir, { recursive: true });
  const file = path.join(o.resultsDir, `${started.toISOString().slice(0, 10)}-scale.md`);
  const head = fs.existsSync(file) ? "" : "# bench:scale results\n\n";
  fs.appendFileSync(file, `${head}${text}\n`);
  log(`appended to ${path.relative(process.cwd(), file)}`);
}

async function main(): Promise<void> {
  const o = scaleOptions(process.argv.slice(2));
  const started = new Date();
  log(
    `bench:scale: phases ${o.phases.join(", ")} pods, ${o.nodes} kwok nodes, ${o.subnets} subnets`,
  );
  const c = await startCluster({ nodes: 2 });
  const kwok = new Kwok();
  const phases: PhaseResult[] = [];
  const state: { baseline?: ModuleRss } = {};
  // SIGTERM/SIGINT (a run cut short): the phases measured so far are still written, then teardown.
  const stop = (sig: string) => {
    log(`${sig}: writing the phases measured so far and tearing down`);
    writeResults(o, started, phases, state.baseline);
    kwok.stop();
    void c.down().finally(() => process.exit(130));
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
  try {
    await deploy({ agent: false, env: { MACVLAN_RESYNC_SECONDS: String(o.resyncSeconds) } });
    kwok.start();
    await measureAll(c, o, phases, state);
  } finally {
    writeResults(o, started, phases, state.baseline);
    kwok.stop();
    await c.down();
  }
}

main().catch(e => {
  console.error(`bench:scale failed: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
