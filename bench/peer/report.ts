// The tables bench:peer prints and writes to bench/results/<date>-peer.md.
import { execFileSync } from "node:child_process";
import * as os from "node:os";
import { PeerOptions, pool } from "./config";
import { webhookLatency, webhookRejections, writeRequests } from "./metrics";
import type { SetupResult } from "./run";

const PEPR_WEBHOOK = /pepr/;
/**
 * Warnings every pod of the local cluster gets in every set-up, left out of the table (listed
 * below it): no cluster DNS, and Multus looking for its cluster network as a NAD in kube-system
 * before it reads it from the conf dir.
 */
const CLUSTER_NOISE = ["MissingClusterDNS", "NoNetworkFound"];

const f1 = (n: number | undefined) => (n === undefined ? "—" : n.toFixed(1));
const ms = (s: number | undefined) => (s === undefined ? "—" : (s * 1000).toFixed(0));
const ratio = (v: number | undefined, floor: number | undefined) =>
  v === undefined || !floor ? "" : ` (${(v / floor).toFixed(2)}×)`;

function timeCell(r: SetupResult, v: number | undefined, floor: number | undefined, got: number) {
  return v === undefined ? `not reached (${got}/${r.pods})` : `${f1(v)}${ratio(v, floor)}`;
}

function latencyCell(r: SetupResult, type: string): string {
  const l = webhookLatency(r.metrics, type, PEPR_WEBHOOK);
  return l.calls ? `${ms(l.p50)} / ${ms(l.p99)} (${l.calls} calls)` : "— (no webhook)";
}

/** The main table: one row per set-up, ratios to the floor. */
export function mainTable(results: SetupResult[]): string {
  const floor = results.find(r => r.name === "floor");
  const rows = results.map(r => {
    const w = writeRequests(r.metrics).total / r.pods;
    const floorW = floor ? writeRequests(floor.metrics).total / floor.pods : undefined;
    const rej = Object.entries(webhookRejections(r.metrics, PEPR_WEBHOOK))
      .map(([k, v]) => `${k} ${v}`)
      .join(", ");
    const other = Object.entries(r.warnings)
      .filter(([k]) => !["FailedCreate", "FailedCreatePodSandBox", ...CLUSTER_NOISE].includes(k))
      .map(([k, v]) => `${k} ${v}`)
      .join(", ");
    return [
      r.name,
      timeCell(r, r.addressedSeconds, floor?.addressedSeconds, r.addressed),
      timeCell(r, r.runningSeconds, floor?.runningSeconds, r.running),
      String(r.warnings.FailedCreate ?? 0),
      String(r.warnings.FailedCreatePodSandBox ?? 0),
      other || "—",
      String(r.duplicates),
      r.heldDetail ? `${r.held} (${r.heldDetail})` : String(r.held),
      latencyCell(r, "admit"),
      latencyCell(r, "validating"),
      rej || "0",
      `${w.toFixed(1)}${ratio(w, floorW)}`,
    ];
  });
  const head = [
    "set-up",
    "all addressed (s)",
    "all Running (s)",
    "FailedCreate",
    "FailedCreatePodSandBox (CNI errors)",
    "other warnings",
    "duplicate addresses",
    "held after the hold",
    "mutating webhook p50 / p99 (ms)",
    "validating webhook p50 / p99 (ms)",
    "webhook rejections",
    "API writes per pod",
  ];
  return [head, head.map(() => "---"), ...rows].map(r => `| ${r.join(" | ")} |`).join("\n");
}

/** CPU seconds and peak RSS of each component, per set-up. */
export function usageTable(results: SetupResult[]): string {
  const groups = [...new Set(results.flatMap(r => r.usage.map(u => u.group)))].sort();
  const head = ["component", ...results.map(r => `${r.name}: CPU s / peak RSS MiB`)];
  const rows = groups.map(g => [
    g,
    ...results.map(r => {
      const u = r.usage.find(x => x.group === g);
      return u ? `${u.cpuSeconds.toFixed(1)} / ${u.peakRssMiB.toFixed(0)}` : "—";
    }),
  ]);
  return [head, head.map(() => "---"), ...rows].map(r => `| ${r.join(" | ")} |`).join("\n");
}

/** The five resources each set-up wrote most, per pod. */
export function writesDetail(results: SetupResult[]): string {
  return results
    .map(r => {
      const top = [...writeRequests(r.metrics).byResource.entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 6)
        .map(([k, v]) => `${k} ${(v / r.pods).toFixed(2)}`)
        .join(", ");
      return `- ${r.name}: ${top}`;
    })
    .join("\n");
}

export function machine(): string {
  const kernel = execFileSync("uname", ["-r"], { encoding: "utf8" }).trim();
  const mem = (os.totalmem() / 2 ** 30).toFixed(1);
  return `${os.cpus().length} CPUs (nproc ${execFileSync("nproc", { encoding: "utf8" }).trim()}, ${os.cpus()[0]?.model ?? "?"}), ${mem} GiB memory, Linux ${kernel}`;
}

export function header(o: PeerOptions): string {
  const p = pool(o);
  return (
    `${o.pods} pods (${o.deployments} Deployments x ${o.replicas}, Deployment i pinned to node i mod ${o.nodes}), ` +
    `${o.nodes} kubelet nodes, pool ${p.first}-${p.last} (${p.size} addresses${o.exact ? ", exactly one per pod" : ""}), ` +
    `hold ${o.holdSeconds} s after deleting everything`
  );
}

/** One message per warning reason and set-up. */
export function warningMessages(results: SetupResult[]): string {
  return results
    .flatMap(r => Object.entries(r.messages).map(([k, m]) => `- ${r.name}, ${k}: ${m}`))
    .join("\n");
}
