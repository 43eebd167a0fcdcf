// The chaos run (`npm run chaos`, bench/chaos.ts; the short variant test/integration/chaos.test.ts):
// start the load, inject each fault when its share of the cycles is done, wait until the product
// has converged (the faulted part back and two looks 3 s apart agree on no duplicate, no pod
// without its lease, every node's routes matching its pods), sample duplicates all along, then
// stop the load, let the reclaim TTL and one resync pass, and judge once.
import type { Cluster } from "../../test/integration/helpers/cluster";
import { macvlanSubnet } from "../../test/integration/helpers/objects";
import { sleep } from "../../hack/cluster/kube";
import {
  ChaosVerdict,
  Duplicate,
  FaultRow,
  duplicateAddresses,
  errorSummary,
  faultTable,
  isClean,
  persisting,
  restartsBetween,
  verdict,
  verdictText,
} from "./checks";
import { readPodsAndLeases, readSnapshot } from "./cluster";
import { FAULTS, FAULT_IMPL, FaultContext, FaultName, componentStates } from "./faults";
import { CHAOS_NAMESPACE, Load, LoadError, LoadOptions, workloads } from "./load";

export const SUBNET = "lan";
/** The module's settings in a chaos run: a short resync and reclaim TTL, so the end comes soon. */
export const CHAOS_ENV = { MACVLAN_RESYNC_SECONDS: "10", MACVLAN_RESERVED_TTL_SECONDS: "10" };
/** The pool: 482 addresses; fixed-IP pods take theirs from its top. */
const RANGE = { start: "198.18.100.10", end: "198.18.101.235" };
export const fixedIps = (n: number) => Array.from({ length: n }, (_, i) => `198.18.101.${240 + i}`);

export interface ChaosOptions {
  cycles: number;
  faults: readonly FaultName[];
  load: LoadOptions;
  /** The module's MACVLAN_RESERVED_TTL_SECONDS and MACVLAN_RESYNC_SECONDS. */
  reservedTtlSeconds: number;
  resyncSeconds: number;
  linkCutSeconds?: number;
  /** Stop the load after this long even if fewer cycles ran (faults are spread over it too). */
  maxSeconds?: number;
  /** Give up on a fault's convergence after this long. */
  convergeTimeoutMs?: number;
  log: (line: string) => void;
}

export interface ChaosReport {
  cycles: number;
  seconds: number;
  faults: FaultRow[];
  /** Duplicates any sample saw during the run, and how many samples were taken. */
  sampled: { samples: number; duplicates: Duplicate[] };
  final: ChaosVerdict;
  errors: LoadError[];
}

/** Opt-in namespace, the subnet (reuse delay 3 s, so addresses come back fast) and the workloads. */
async function setup(c: Cluster, o: ChaosOptions): Promise<void> {
  await c.apply(
    macvlanSubnet(SUBNET, {
      ranges: [RANGE, { start: "198.18.101.240", end: "198.18.101.250" }],
      reuseDelaySeconds: 3,
    }),
  );
  await c.createNamespace(CHAOS_NAMESPACE, { "macvlan.dev/subnet": SUBNET });
  await c.apply(workloads(o.load));
  await quiesced(c, o, 300_000);
}

/** Every workload pod Ready, none terminating, no fixed pod left. */
async function quiesced(c: Cluster, o: ChaosOptions, timeoutMs: number): Promise<void> {
  const want = 2 * o.load.deploymentReplicas + o.load.statefulSetReplicas;
  const end = Date.now() + timeoutMs;
  for (;;) {
    const pods = await c.listPods(CHAOS_NAMESPACE).catch(() => undefined);
    const ready = pods?.filter(
      p =>
        !p.metadata.deletionTimestamp &&
        p.status?.conditions?.some(
          (x: { type: string; status: string }) => x.type === "Ready" && x.status === "True",
        ),
    );
    if (pods && ready && pods.length === want && ready.length === want) return;
    if (Date.now() > end)
      throw new Error(
        `the workload did not settle in ${timeoutMs / 1000} s: ${ready?.length ?? "?"} of ${want} pods Ready, ${pods?.length ?? "?"} pods`,
      );
    await sleep(2000);
  }
}

/** Two looks 3 s apart agree that nothing is duplicated, unleased or misrouted. */
async function converged(c: Cluster, graceSeconds: number): Promise<boolean> {
  try {
    const a = verdict(await readSnapshot(c.api, c.nodes, graceSeconds));
    await sleep(3000);
    const b = verdict(await readSnapshot(c.api, c.nodes, graceSeconds));
    const p = persisting(a, b);
    return !p.duplicates.length && !p.unleased.length && !p.routes.length;
  } catch {
    return false;
  }
}

/** Samples duplicates every 3 s until stopped. */
function sampler(c: Cluster) {
  const seen = new Map<string, Duplicate>();
  let samples = 0;
  let stop = false;
  const done = (async () => {
    while (!stop) {
      try {
        for (const d of duplicateAddresses(await readPodsAndLeases(c.api)))
          seen.set(`${d.ip}|${d.holders.join(",")}`, d);
        samples++;
      } catch {
        /* the API server may be restarting */
      }
      await sleep(3000);
    }
  })();
  return {
    stop: async () => {
      stop = true;
      await done;
      return { samples, duplicates: [...seen.values()] };
    },
  };
}

async function runFault(
  c: Cluster,
  name: FaultName,
  ctx: FaultContext,
  o: ChaosOptions,
  t0: number,
  load: Load,
): Promise<FaultRow> {
  const before = await componentStates(c.api);
  const start = Date.now();
  o.log(`fault: ${name} (${load.cycles} cycles done)`);
  const impl = FAULT_IMPL[name];
  let did: string;
  try {
    did = await impl.inject(ctx);
  } catch (e) {
    did = `injection failed: ${e instanceof Error ? e.message : String(e)}`;
  }
  let convergedAfter: number | undefined;
  const limit = start + (o.convergeTimeoutMs ?? 300_000);
  try {
    await impl.back(ctx);
    while (Date.now() < limit) {
      if (await converged(c, o.reservedTtlSeconds + o.resyncSeconds)) {
        convergedAfter = (Date.now() - start) / 1000;
        break;
      }
      await sleep(1000);
    }
  } catch (e) {
    did += `; not back: ${e instanceof Error ? e.message : String(e)}`;
  }
  const restarts = restartsBetween(before, await componentStates(c.api).catch(() => before));
  const row: FaultRow = {
    fault: name,
    at: (start - t0) / 1000,
    did: [
      did,
      restarts.length ? restarts.join(", ") : "no pod restarted",
      errorSummary(load.errors, start, Date.now()),
    ].join("; "),
    convergedAfter,
  };
  o.log(
    `  ${row.did}; converged ${convergedAfter === undefined ? "NOT" : `after ${convergedAfter.toFixed(1)} s`}`,
  );
  return row;
}

export async function runChaos(c: Cluster, o: ChaosOptions): Promise<ChaosReport> {
  await setup(c, o);
  const ctx: FaultContext = { api: c.api, nodes: c.nodes, linkCutSeconds: o.linkCutSeconds ?? 30 };
  const load = new Load(c.api, o.load);
  const samples = sampler(c);
  const t0 = Date.now();
  load.start();
  const rows: FaultRow[] = [];
  let last = 0;
  try {
    const elapsed = () => (Date.now() - t0) / 1000;
    const timeUp = (share = 1) => o.maxSeconds !== undefined && elapsed() >= share * o.maxSeconds;
    for (const [i, name] of o.faults.entries()) {
      const share = (i + 1) / (o.faults.length + 1);
      while (load.cycles < Math.round(share * o.cycles) && !timeUp(share)) await sleep(500);
      rows.push(await runFault(c, name, ctx, o, t0, load));
      if (load.cycles - last > 0)
        o.log(`  ${load.cycles} cycles after ${((Date.now() - t0) / 1000).toFixed(0)} s`);
      last = load.cycles;
    }
    while (load.cycles < o.cycles && !timeUp()) await sleep(500);
  } finally {
    await load.stop();
  }
  const seconds = (Date.now() - t0) / 1000;
  o.log(
    `load stopped: ${load.cycles} cycles in ${seconds.toFixed(0)} s; waiting for the workload to settle`,
  );
  await quiesced(c, o, 300_000);
  const grace = o.reservedTtlSeconds + o.resyncSeconds;
  o.log(`settled; waiting the reclaim TTL and one resync (${grace + 5} s), then judging once`);
  await sleep((grace + 5) * 1000);
  const final = verdict(await readSnapshot(c.api, c.nodes, grace));
  const sampled = await samples.stop();
  return { cycles: load.cycles, seconds, faults: rows, sampled, final, errors: load.errors };
}

export const cleanRun = (r: ChaosReport) =>
  isClean(r.final) &&
  !r.sampled.duplicates.length &&
  r.faults.every(f => f.convergedAfter !== undefined);

export { FAULTS };

/** The printed result: the fault table, then the final verdict and what the samples saw. */
export function chaosSummary(r: ChaosReport): string {
  return [
    `${r.cycles} pod create/delete cycles in ${r.seconds.toFixed(0)} s, ${r.faults.length} faults`,
    "",
    faultTable(r.faults),
    "",
    `duplicates sampled during the run: ${r.sampled.duplicates.length} (${r.sampled.samples} samples, every 3 s)`,
    "after the load, the reclaim TTL and one resync:",
    verdictText(r.final),
    "",
    `load errors (all, retried): ${errorSummary(r.errors, 0, Number.MAX_SAFE_INTEGER)}`,
  ].join("\n");
}
