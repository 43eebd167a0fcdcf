// The table bench:scale prints and writes to bench/results/<date>-scale.md: one column per phase,
// the growth from the first phase to the last, and which of the issue's targets were met.
import { webhookLatency } from "../peer/metrics";
import type { Samples } from "../peer/metrics";
import { machine } from "../peer/report";
import type { ScaleOptions } from "./config";
import { CreateResult, ModuleRss, ResyncResult, quantile } from "./measure";
import type { RestartResult } from "./restart";

export interface PhaseResult {
  pods: number;
  create: CreateResult;
  webhook: Samples;
  boundSeconds?: number;
  bound: number;
  leases: number;
  rss: ModuleRss;
  resync: ResyncResult;
  restart: RestartResult;
}

const TARGET_P99_MS = 100;
const TARGET_KIB_PER_LEASE = 5;
const TARGET_READY_S = 10;

const f = (n: number | undefined, d = 0) => (n === undefined ? "—" : n.toFixed(d));
const ms = (s: number | undefined) => (s === undefined ? undefined : s * 1000);
const admissionSum = (r: ModuleRss) => Object.values(r.admissionMiB);
const admissionMax = (r: ModuleRss) => Math.max(0, ...admissionSum(r));
const PEPR = /pepr/;

function rows(p: PhaseResult): [string, string][] {
  const admit = webhookLatency(p.webhook, "admit", PEPR);
  const validating = webhookLatency(p.webhook, "validating", PEPR);
  const top = p.resync.byResource
    .slice(0, 4)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  return [
    [
      "mutating webhook p50 / p99 (ms, apiserver histogram)",
      `${f(ms(admit.p50))} / ${f(ms(admit.p99))} (${admit.calls} calls)`,
    ],
    ["validating webhook p50 / p99 (ms)", `${f(ms(validating.p50))} / ${f(ms(validating.p99))}`],
    [
      "pod create p50 / p99 (ms, client, incl. both webhooks)",
      `${f(quantile(p.create.latenciesMs, 0.5))} / ${f(quantile(p.create.latenciesMs, 0.99))}`,
    ],
    ["creates (s) / failed", `${f(p.create.seconds, 1)} / ${p.create.failures}`],
    [
      "all bench leases Bound (s from first create)",
      p.boundSeconds === undefined ? `not reached (${p.bound})` : f(p.boundSeconds, 1),
    ],
    ["leases in the cluster (incl. replicas' pools)", String(p.leases)],
    ["watcher RSS (MiB)", f(p.rss.watcherMiB)],
    [
      "admission replicas RSS (MiB)",
      admissionSum(p.rss)
        .map(v => f(v))
        .join(" / ") || "—",
    ],
    [
      "resync (ms, watcher log)",
      p.resync.ms === undefined
        ? "not seen"
        : `${p.resync.ms} (${p.resync.leases} leases, ${p.resync.pods} pods, ${p.resync.repairs} repairs)`,
    ],
    ["resync window API requests", `${p.resync.requests}${top ? ` (${top})` : ""}`],
    ["admission restart: delete → new pod Ready (s)", f(p.restart.deleteToReadySeconds, 1)],
    ["admission restart: container start → Ready (s)", f(p.restart.startToReadySeconds, 0)],
  ];
}

/** One row per figure, one column per phase, then first→last growth. */
export function phaseTable(phases: PhaseResult[], baseline?: ModuleRss): string {
  const head = ["", ...phases.map(p => `${p.pods.toLocaleString("en-US")} pods`)];
  const all = phases.map(rows);
  const body = all[0].map((r, i) => [r[0], ...all.map(a => a[i][1])]);
  const lines = [head, head.map(() => "---"), ...body];
  if (baseline)
    lines.push([
      "RSS before any pod: watcher / admission (MiB)",
      `${f(baseline.watcherMiB)} / ${admissionSum(baseline)
        .map(v => f(v))
        .join(" / ")}`,
      ...phases.slice(1).map(() => ""),
    ]);
  return lines.map(r => `| ${r.join(" | ")} |`).join("\n");
}

interface Growth {
  what: string;
  first: number | undefined;
  last: number | undefined;
}

function growth(a: PhaseResult, b: PhaseResult): Growth[] {
  const p99 = (p: PhaseResult) => ms(webhookLatency(p.webhook, "admit", PEPR).p99);
  return [
    { what: "mutating webhook p99 (ms)", first: p99(a), last: p99(b) },
    {
      what: "client create p99 (ms)",
      first: quantile(a.create.latenciesMs, 0.99),
      last: quantile(b.create.latenciesMs, 0.99),
    },
    { what: "all Bound (s)", first: a.boundSeconds, last: b.boundSeconds },
    { what: "watcher RSS (MiB)", first: a.rss.watcherMiB, last: b.rss.watcherMiB },
    {
      what: "largest admission replica RSS (MiB)",
      first: admissionMax(a.rss),
      last: admissionMax(b.rss),
    },
    { what: "resync (ms)", first: a.resync.ms, last: b.resync.ms },
    { what: "resync window API requests", first: a.resync.requests, last: b.resync.requests },
    {
      what: "admission restart delete → Ready (s)",
      first: a.restart.deleteToReadySeconds,
      last: b.restart.deleteToReadySeconds,
    },
  ];
}

export function growthTable(phases: PhaseResult[]): string {
  if (phases.length < 2) return "(one phase only: no growth)";
  const a = phases[0];
  const b = phases[phases.length - 1];
  const head = ["figure", `${a.pods} pods`, `${b.pods} pods`, "×"];
  const body = growth(a, b).map(g => [
    g.what,
    f(g.first, 1),
    f(g.last, 1),
    g.first && g.last !== undefined ? (g.last / g.first).toFixed(2) : "—",
  ]);
  return [head, head.map(() => "---"), ...body].map(r => `| ${r.join(" | ")} |`).join("\n");
}

/** KiB of RSS per extra lease between two phases. */
const perLease = (a: PhaseResult, b: PhaseResult, pick: (r: ModuleRss) => number) =>
  b.leases > a.leases ? ((pick(b.rss) - pick(a.rss)) * 1024) / (b.leases - a.leases) : undefined;

export function targets(phases: PhaseResult[]): string {
  const last = phases[phases.length - 1];
  const p99 = ms(webhookLatency(last.webhook, "admit", PEPR).p99);
  const lines = [
    `- admission p99 ≤ ${TARGET_P99_MS} ms at ${last.pods} pods: mutating webhook p99 ${f(p99)} ms — ${p99 !== undefined && p99 <= TARGET_P99_MS ? "met" : "not met"}`,
  ];
  if (phases.length > 1) {
    const a = phases[0];
    const w = perLease(a, last, r => r.watcherMiB);
    const r = perLease(a, last, admissionMax);
    const ok = (v?: number) => (v !== undefined && v <= TARGET_KIB_PER_LEASE ? "met" : "not met");
    lines.push(
      `- memory ≤ ${TARGET_KIB_PER_LEASE} KiB per lease (${a.leases} → ${last.leases} leases): watcher ${f(w, 2)} KiB/lease — ${ok(w)}; largest admission replica ${f(r, 2)} KiB/lease — ${ok(r)} (two points; RSS includes V8's heap slack, so one sample is noisy)`,
    );
  }
  const s = last.restart.startToReadySeconds;
  const d = last.restart.deleteToReadySeconds;
  lines.push(
    `- replica Ready ≤ ${TARGET_READY_S} s of start at ${last.leases} leases: container start → Ready ${f(s)} s (delete → Ready ${f(d, 1)} s) — ${s !== undefined && s <= TARGET_READY_S ? "met" : "not met"}`,
  );
  return lines.join("\n");
}

export function runHeader(o: ScaleOptions, started: Date): string {
  return [
    `## bench:scale ${started.toISOString().slice(0, 16)}Z`,
    "",
    `Machine: ${machine()} (2 cores, 24 GiB).`,
    `Run: phases ${o.phases.join(" → ")} pods (cumulative, created directly with ${o.concurrency} creates in flight, no controller), ${o.nodes} kwok nodes, ${o.subnets} MacvlanSubnets (${Math.ceil(o.subnets / 2)} IPv4 /18, ${Math.floor(o.subnets / 2)} IPv6 /64), one opted-in namespace each; module on 2 real kubelet nodes (2 admission replicas + watcher, no agent), MACVLAN_RESYNC_SECONDS=${o.resyncSeconds}.`,
  ].join("\n");
}
