// Options of `npm run bench:peer` (bench/peer.bench.ts), from flags and environment variables.
//   PMV_PEER_PODS=N            pods per set-up (default 1000 = 10 Deployments x 100)
//   PMV_PEER_DEPLOYMENTS=D     Deployments the pods are spread over (default 10)
//   PMV_PEER_NODES=K           kubelet nodes (default: enough for N pods at 240 per node)
//   PMV_PEER_HOLD_SECONDS=S    wait after deleting everything before counting held addresses (120)
//   PMV_PEER_TIMEOUT_SECONDS=T give up waiting for a set-up's pods after T s (1800)
//   PMV_PEER_SETUPS=a,b        only these of floor,whereabouts,pepr-macvlan (default all three)
//   --exact / PMV_PEER_EXACT=1 exactly as many addresses as pods (default: 2,046 addresses)
//   --no-results               print only; do not write bench/results/<date>-peer.md
import * as path from "node:path";
import { REPO_ROOT } from "../../hack/cluster/config";
import { KUBELET_MAX_PODS } from "../../hack/kubelet/config";

export const SETUPS = ["floor", "whereabouts", "pepr-macvlan"] as const;
export type SetupName = (typeof SETUPS)[number];

/** The kubelet's maxPods (hack/kubelet/config.ts), and what we leave for system pods per node. */
export const MAX_PODS_PER_NODE = KUBELET_MAX_PODS;
export const BENCH_PODS_PER_NODE = KUBELET_MAX_PODS - 10;
export const MAX_NODES = 20;

/** The shared pool, inside the LAN 198.18.0.0/16 (design.md §5): 198.18.120.1-198.18.127.254. */
export const LAN_CIDR = "198.18.0.0/16";
export const LAN_GATEWAY = "198.18.0.1";
export const POOL_FIRST = "198.18.120.1";
export const POOL_SIZE = 2046;

export interface PeerOptions {
  pods: number;
  deployments: number;
  replicas: number;
  nodes: number;
  holdSeconds: number;
  timeoutSeconds: number;
  exact: boolean;
  setups: SetupName[];
  writeResults: boolean;
  resultsDir: string;
}

const num = (name: string, dflt: number): number => {
  const v = process.env[name];
  if (v === undefined || v === "") return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}=${v}: want a whole number`);
  return n;
};

export function peerOptions(argv: string[]): PeerOptions {
  const pods = num("PMV_PEER_PODS", 1000);
  const deployments = Math.min(num("PMV_PEER_DEPLOYMENTS", 10), pods);
  if (pods < 1 || pods % deployments !== 0)
    throw new Error(
      `PMV_PEER_PODS=${pods} must be a positive multiple of ${deployments} Deployments`,
    );
  const nodes = num("PMV_PEER_NODES", Math.max(2, Math.ceil(pods / BENCH_PODS_PER_NODE)));
  if (nodes > MAX_NODES || nodes * BENCH_PODS_PER_NODE < pods)
    throw new Error(
      `${pods} pods need ${Math.ceil(pods / BENCH_PODS_PER_NODE)} kubelet nodes at ${BENCH_PODS_PER_NODE} ` +
        `pods each (maxPods ${MAX_PODS_PER_NODE} less the module's, agents' and Whereabouts' pods), ` +
        `and the local cluster has at most ${MAX_NODES}: use PMV_PEER_PODS <= ${MAX_NODES * BENCH_PODS_PER_NODE}`,
    );
  const exact = argv.includes("--exact") || process.env.PMV_PEER_EXACT === "1";
  if (!exact && pods > POOL_SIZE) throw new Error(`at most ${POOL_SIZE} pods (the pool's size)`);
  const setups = (process.env.PMV_PEER_SETUPS ?? SETUPS.join(","))
    .split(",")
    .map(s => s.trim()) as SetupName[];
  for (const s of setups)
    if (!SETUPS.includes(s))
      throw new Error(`PMV_PEER_SETUPS: unknown ${s} (${SETUPS.join(", ")})`);
  return {
    pods,
    deployments,
    replicas: pods / deployments,
    nodes,
    holdSeconds: num("PMV_PEER_HOLD_SECONDS", 120),
    timeoutSeconds: num("PMV_PEER_TIMEOUT_SECONDS", 1800),
    exact,
    setups,
    writeResults: !argv.includes("--no-results"),
    resultsDir: path.join(REPO_ROOT, "bench", "results"),
  };
}

/** The n-th address after `first` (IPv4). */
export function ipAdd(first: string, n: number): string {
  const v = first.split(".").reduce((a, o) => a * 256 + Number(o), 0) + n;
  return [24, 16, 8, 0].map(s => Math.floor(v / 2 ** s) % 256).join(".");
}

/** The pool of a run: [first, last], POOL_SIZE addresses or exactly `pods`. */
export function pool(o: PeerOptions): { first: string; last: string; size: number } {
  const size = o.exact ? o.pods : POOL_SIZE;
  return { first: POOL_FIRST, last: ipAdd(POOL_FIRST, size - 1), size };
}

/** Deployment i runs on node (i mod nodes) + 1: the floor needs each pod's node up front. */
export const nodeOfDeployment = (o: PeerOptions, i: number) => (i % o.nodes) + 1;

/** Pods pinned to node k (1-based). */
export function podsOnNode(o: PeerOptions, k: number): number {
  let n = 0;
  for (let i = 0; i < o.deployments; i++) if (nodeOfDeployment(o, i) === k) n += o.replicas;
  return n;
}
