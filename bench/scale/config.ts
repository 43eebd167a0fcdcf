// Options of `npm run bench:scale` (bench/scale.bench.ts), from environment variables:
//   PMV_SCALE_PODS=N          pods at the last phase (default 10000)
//   PMV_SCALE_PHASES=a,b      cumulative pod counts measured one after another (default N/10,N)
//   PMV_SCALE_NODES=K         kwok's fake nodes the pods are scheduled to (default 500)
//   PMV_SCALE_SUBNETS=S       MacvlanSubnets, half IPv4 /18s, half IPv6 /64s (default 20, at most 20)
//   PMV_SCALE_CONCURRENCY=C   pod creates in flight (default 8)
//   PMV_SCALE_RESYNC_SECONDS  the watcher's MACVLAN_RESYNC_SECONDS (default 60)
//   PMV_SCALE_TIMEOUT_SECONDS give up waiting for a phase's leases after T s (default 3600)
//   --no-results              print only; do not write bench/results/<date>-scale.md
import * as path from "node:path";
import { REPO_ROOT } from "../../hack/cluster/config";

export const MAX_SUBNETS = 20;

export interface ScaleOptions {
  pods: number;
  phases: number[];
  nodes: number;
  subnets: number;
  concurrency: number;
  resyncSeconds: number;
  timeoutSeconds: number;
  writeResults: boolean;
  resultsDir: string;
}

const num = (name: string, dflt: number): number => {
  const v = process.env[name];
  if (v === undefined || v === "") return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name}=${v}: want a positive whole number`);
  return n;
};

function phasesOf(pods: number): number[] {
  const raw = process.env.PMV_SCALE_PHASES;
  const phases = raw
    ? raw.split(",").map(s => Number(s.trim()))
    : [...new Set([Math.max(1, Math.round(pods / 10)), pods])];
  for (let i = 0; i < phases.length; i++)
    if (!Number.isInteger(phases[i]) || phases[i] < 1 || (i && phases[i] <= phases[i - 1]))
      throw new Error(`PMV_SCALE_PHASES=${raw}: want increasing positive pod counts`);
  if (phases[phases.length - 1] !== pods)
    throw new Error(`PMV_SCALE_PHASES must end at PMV_SCALE_PODS (${pods})`);
  return phases;
}

export function scaleOptions(argv: string[]): ScaleOptions {
  const pods = num("PMV_SCALE_PODS", 10_000);
  const subnets = num("PMV_SCALE_SUBNETS", MAX_SUBNETS);
  if (subnets > MAX_SUBNETS) throw new Error(`PMV_SCALE_SUBNETS: at most ${MAX_SUBNETS}`);
  return {
    pods,
    phases: phasesOf(pods),
    nodes: num("PMV_SCALE_NODES", 500),
    subnets,
    concurrency: num("PMV_SCALE_CONCURRENCY", 8),
    resyncSeconds: num("PMV_SCALE_RESYNC_SECONDS", 60),
    timeoutSeconds: num("PMV_SCALE_TIMEOUT_SECONDS", 3600),
    writeResults: !argv.includes("--no-results"),
    resultsDir: path.join(REPO_ROOT, "bench", "results"),
  };
}
