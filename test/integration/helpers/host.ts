// What the local cluster may change on the machine, captured before `up` and after `down`.
import * as fs from "node:fs";
import { NETNS_PREFIX, REPO_ROOT } from "../../../hack/cluster/config";
import { procStartTime, run } from "../../../hack/cluster/proc";

export interface HostSnapshot {
  /** All named network namespaces (/run/netns). */
  netns: string[];
  /** Links of the host network namespace (`ip -br link`, names only). */
  links: string[];
  /** Addresses of the host network namespace (`ip -br addr`). */
  addrs: string[];
  /** IPv4 and IPv6 routes of the host network namespace. */
  routes: string[];
  /** Processes that look like the cluster's (pid:starttime  cmdline). */
  clusterProcesses: string[];
}

function lines(s: string): string[] {
  return s
    .split("\n")
    .map(l => l.trim().replace(/\s+/g, " "))
    .filter(Boolean)
    .sort();
}

/**
 * Processes that belong to a local cluster: the binaries from the build cache and anything running
 * with the cluster's state directory or a cluster network namespace on its command line.
 */
export function clusterProcesses(binDir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let cmd = "";
    try {
      cmd = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").join(" ").trim();
    } catch {
      continue;
    }
    const ours =
      cmd.includes(`${binDir}/`) ||
      cmd.includes(`${REPO_ROOT}/.cluster/`) ||
      cmd.includes(`--net=/run/netns/${NETNS_PREFIX}`);
    const st = procStartTime(Number(entry));
    if (ours && st) out.push(`${entry}:${st} ${cmd.slice(0, 200)}`);
  }
  return out.sort();
}

export function hostSnapshot(binDir: string): HostSnapshot {
  let netns: string[] = [];
  try {
    netns = fs.readdirSync("/run/netns").sort();
  } catch {
    netns = [];
  }
  return {
    netns,
    links: lines(run("ip", ["-br", "link"]).stdout).map(l => l.split(" ")[0]),
    addrs: lines(run("ip", ["-br", "addr"]).stdout),
    routes: [...lines(run("ip", ["route"]).stdout), ...lines(run("ip", ["-6", "route"]).stdout)],
    clusterProcesses: clusterProcesses(binDir),
  };
}

export interface SnapshotDiff {
  /** Differences the cluster is responsible for (should be empty). */
  ours: string[];
  /** Differences in things the cluster never names (other work on the machine). */
  others: string[];
}

/** Compares two snapshots; what carries the cluster's names (pmv-…) counts as ours. */
export function diffSnapshots(before: HostSnapshot, after: HostSnapshot): SnapshotDiff {
  const ours: string[] = [];
  const others: string[] = [];
  const cmp = (what: keyof HostSnapshot, isOurs: (item: string) => boolean) => {
    const b = new Set(before[what]);
    const a = new Set(after[what]);
    for (const x of a) if (!b.has(x)) (isOurs(x) ? ours : others).push(`${what}: added ${x}`);
    for (const x of b) if (!a.has(x)) (isOurs(x) ? ours : others).push(`${what}: removed ${x}`);
  };
  const pmv = (s: string) =>
    s.includes(NETNS_PREFIX) ||
    s.includes("198.18.") ||
    s.includes("198.19.") ||
    s.includes("2001:db8:");
  cmp("netns", pmv);
  cmp("links", pmv);
  cmp("addrs", pmv);
  cmp("routes", pmv);
  cmp("clusterProcesses", () => true);
  return { ours, others };
}
