// The chaos suite's verdicts (pure): over one snapshot of pods, leases, subnets, StatefulSets and
// each node's routes, what is a duplicate address, a leaked lease, a pod without its lease, a
// route that does not match the node's pods, and a subnet status that does not match its leases.
// bench/chaos/cluster.ts fills the snapshot; test/unit/chaos-checks.test.ts feeds it fakes.
import type { MacvlanLease, MacvlanSubnet } from "../../crds/types";
import { hostPrefix } from "../../agent/ip";
import { localPods } from "../../agent/phases/routes";
import { isOwnedRoute } from "../../agent/phases/common";
import type { PodLike } from "../../agent/pods";
import type { KernelRoute } from "../../agent/types";
import { ANN_POOL_ORPHANED_AT, isPoolLease, parseOwner, tokenOpens } from "../../lib/decide/pool";
import { PodSnapshot, claimOf, leaseToken, tokenOf } from "../../lib/decide/pods";
import { StatefulSetSnapshot } from "../../lib/decide/release";
import { countStatus } from "../../lib/decide/subnet-status";
import { leaseName } from "../../lib/ipam";
import { ownerStillWants } from "../../lib/owner";

export type ChaosPod = PodSnapshot &
  PodLike & { metadata?: PodSnapshot["metadata"] & { creationTimestamp?: string } };

export interface NodeRoutes {
  node: string;
  /** `ip -j route` (both families) in the node's network namespace, parsed. */
  routes: KernelRoute[];
  /** Every address the node holds (a pod with one of them gets no route). */
  addresses: Set<string>;
}

export interface ChaosSnapshot {
  pods: ChaosPod[];
  leases: MacvlanLease[];
  subnets: MacvlanSubnet[];
  /** By `namespace/name`. */
  statefulSets: ReadonlyMap<string, StatefulSetSnapshot>;
  nodes: NodeRoutes[];
  /** The module's MACVLAN_RESERVED_TTL_SECONDS plus one resync: older unclaimed leases leak. */
  graceSeconds: number;
  now: Date;
}

export interface Duplicate {
  ip: string;
  /** The pods (namespace/name) or leases holding it. */
  holders: string[];
}

export interface Finding {
  what: string;
  detail: string;
}

export interface ChaosVerdict {
  duplicates: Duplicate[];
  /** Leases held (Reserved/Bound) without a live pod or replica, older than the grace. */
  leaks: Finding[];
  /** Live pods that carry a macvlan address no held lease records for them. */
  unleased: Finding[];
  /** Per node: a pod's route missing, or an agent route without its pod. */
  routes: Finding[];
  /** Subnets whose status total/allocated/free differ from what their leases count. */
  status: Finding[];
}

const podKey = (p: ChaosPod) => `${p.metadata?.namespace ?? ""}/${p.metadata?.name ?? ""}`;
const held = (l: MacvlanLease) => {
  const phase = l.status?.phase ?? "Reserved";
  return phase === "Reserved" || phase === "Bound";
};
/** A pod whose sandbox may still hold its address: everything but finished pods. */
const mayHoldAddress = (p: ChaosPod) =>
  p.status?.phase !== "Succeeded" && p.status?.phase !== "Failed";

/** The macvlan address a pod carries: what admission wrote on it (single address only). */
export function podAddress(p: ChaosPod): { subnet: string; ip: string } | undefined {
  const claim = claimOf(p);
  return claim && { subnet: claim.subnet, ip: claim.ip };
}

/**
 * A duplicate: one address held by two pods that may both have it configured (terminating ones
 * count: their sandbox may still answer), or by two held leases (names are the lock: only a
 * misnamed lease can do that).
 */
export function duplicateAddresses(s: Pick<ChaosSnapshot, "pods" | "leases">): Duplicate[] {
  const by = new Map<string, Set<string>>();
  const add = (ip: string, who: string) => by.set(ip, (by.get(ip) ?? new Set()).add(who));
  for (const p of s.pods.filter(mayHoldAddress)) {
    const a = podAddress(p);
    if (a) add(a.ip, `pod ${podKey(p)}`);
  }
  const leaseHolders = new Map<string, string[]>();
  for (const l of s.leases.filter(held)) {
    const ip = l.spec?.ip ?? "";
    leaseHolders.set(ip, [...(leaseHolders.get(ip) ?? []), `lease ${l.metadata?.name ?? ""}`]);
  }
  const out: Duplicate[] = [];
  for (const [ip, holders] of by) if (holders.size > 1) out.push({ ip, holders: [...holders] });
  for (const [ip, holders] of leaseHolders) if (holders.length > 1) out.push({ ip, holders });
  return out.sort((a, b) => a.ip.localeCompare(b.ip));
}

/** Seconds since the lease was last (re)reserved or created; undefined when unknown. */
function ageSeconds(l: MacvlanLease, now: Date): number | undefined {
  const orphaned = l.metadata?.annotations?.[ANN_POOL_ORPHANED_AT];
  const since = orphaned ?? l.status?.reservedAt ?? l.metadata?.creationTimestamp;
  if (!since) return undefined;
  const t = new Date(since).getTime();
  return Number.isNaN(t) ? undefined : (now.getTime() - t) / 1000;
}

/** Whether a live pod is the lease's: bound to its uid, or unbound and opened by its token. */
function leaseIsPods(l: MacvlanLease, p: ChaosPod): boolean {
  const uid = p.metadata?.uid;
  if (uid && l.spec?.podRef?.uid === uid) return true;
  if (l.spec?.podRef?.uid) return false;
  const token = tokenOf(p);
  return !!token && (leaseToken(l) === token || tokenOpens(l, token));
}

/** Why a held lease is legitimately without a pod right now, or undefined. */
function whyHeldWithoutPod(
  l: MacvlanLease,
  s: ChaosSnapshot,
  live: Set<string>,
): string | undefined {
  if (isPoolLease(l)) {
    const owner = parseOwner(l.metadata?.annotations?.["macvlan.dev/pool-owner"]);
    const orphaned = !!l.metadata?.annotations?.[ANN_POOL_ORPHANED_AT];
    if (!orphaned && owner && live.has(`${owner.namespace}/${owner.pod}`))
      return "a live admission replica's pool";
    return undefined;
  }
  const owner = l.spec?.owner;
  if (owner && !l.spec?.podRef?.uid) {
    const sts = s.statefulSets.get(`${owner.namespace}/${owner.name}`);
    if (ownerStillWants(owner, sts)) return "held for its StatefulSet ordinal";
  }
  return undefined;
}

/** Held leases no live pod (or live replica, or wanting StatefulSet) accounts for, past the grace. */
export function leakedLeases(s: ChaosSnapshot): Finding[] {
  const live = new Set(s.pods.filter(mayHoldAddress).map(podKey));
  const byName = new Map<string, ChaosPod[]>();
  for (const p of s.pods.filter(mayHoldAddress)) {
    const a = podAddress(p);
    const name = a && safeLeaseName(a.subnet, a.ip);
    if (name) byName.set(name, [...(byName.get(name) ?? []), p]);
  }
  const out: Finding[] = [];
  for (const l of s.leases.filter(held)) {
    const name = l.metadata?.name ?? "";
    if ((byName.get(name) ?? []).some(p => leaseIsPods(l, p))) continue;
    if (whyHeldWithoutPod(l, s, live)) continue;
    const age = ageSeconds(l, s.now);
    if (age !== undefined && age < s.graceSeconds) continue;
    const pod = l.spec?.podRef;
    const whose = pod?.uid ? `pod ${pod.namespace}/${pod.name ?? "?"} (gone)` : "no pod";
    out.push({
      what: name,
      detail: `${l.spec?.ip} ${l.status?.phase ?? "Reserved"} for ${whose}, ${age === undefined ? "age unknown" : `${Math.round(age)} s old`}`,
    });
  }
  return out;
}

function safeLeaseName(subnet: string, ip: string): string | undefined {
  try {
    return leaseName(subnet, ip);
  } catch {
    return undefined;
  }
}

/** Live pods with an address whose lease is missing, released or someone else's. */
export function podsWithoutLease(s: Pick<ChaosSnapshot, "pods" | "leases">): Finding[] {
  const leases = new Map(s.leases.map(l => [l.metadata?.name ?? "", l]));
  const out: Finding[] = [];
  for (const p of s.pods.filter(mayHoldAddress)) {
    if (p.metadata?.deletionTimestamp) continue;
    const a = podAddress(p);
    if (!a) continue;
    const name = safeLeaseName(a.subnet, a.ip);
    const l = name ? leases.get(name) : undefined;
    if (l && held(l) && leaseIsPods(l, p)) continue;
    const why = !l
      ? `no lease ${name ?? "(invalid address)"}`
      : !held(l)
        ? `lease ${name} is ${l.status?.phase}`
        : `lease ${name} belongs to ${l.spec?.podRef?.name ?? "another pod"}`;
    out.push({ what: podKey(p), detail: `${a.ip}: ${why}` });
  }
  return out;
}

/** Per node: host routes the agent should have (one per live local macvlan pod) against its own. */
export function routeMismatches(s: Pick<ChaosSnapshot, "pods" | "subnets" | "nodes">): Finding[] {
  const subnets = s.subnets.flatMap(sub =>
    sub.metadata?.name && sub.spec ? [{ name: sub.metadata.name, spec: sub.spec }] : [],
  );
  const out: Finding[] = [];
  for (const n of s.nodes) {
    const want = new Map<string, string>();
    for (const pa of localPods(n.node, s.pods, subnets).pods)
      if (!n.addresses.has(pa.ip)) want.set(hostPrefix(pa.ip), pa.pod);
    const have = new Set(n.routes.filter(isOwnedRoute).map(r => r.dst));
    for (const [dst, pod] of want)
      if (!have.has(dst)) out.push({ what: n.node, detail: `no route ${dst} for pod ${pod}` });
    for (const dst of have)
      if (!want.has(dst)) out.push({ what: n.node, detail: `route ${dst} without a local pod` });
  }
  return out;
}

/** Subnets whose written status counts differ from what the IPAM engine counts from the leases. */
export function statusMismatches(s: Pick<ChaosSnapshot, "subnets" | "leases">): Finding[] {
  const out: Finding[] = [];
  for (const sub of s.subnets) {
    const name = sub.metadata?.name ?? "";
    const want = countStatus(
      sub,
      s.leases.filter(l => l.spec?.subnet === name),
    );
    const got = sub.status ?? {};
    const pairs: [string, unknown, unknown][] = [
      ["total", got.total, want.total],
      ["allocated", got.allocated, want.allocated],
      ["free", got.free, want.free],
    ];
    const diff = pairs.filter(([, g, w]) => String(g) !== String(w));
    if (diff.length)
      out.push({
        what: name,
        detail: diff.map(([k, g, w]) => `${k} ${String(g)} (leases say ${String(w)})`).join(", "),
      });
  }
  return out;
}

export function verdict(s: ChaosSnapshot): ChaosVerdict {
  return {
    duplicates: duplicateAddresses(s),
    leaks: leakedLeases(s),
    unleased: podsWithoutLease(s),
    routes: routeMismatches(s),
    status: statusMismatches(s),
  };
}

export const isClean = (v: ChaosVerdict) =>
  !v.duplicates.length &&
  !v.leaks.length &&
  !v.unleased.length &&
  !v.routes.length &&
  !v.status.length;

/**
 * What two verdicts taken a few seconds apart both found: during churn a pod started a moment
 * ago has no route yet and a deleted one still has its route; a real mismatch persists.
 */
export function persisting(a: ChaosVerdict, b: ChaosVerdict): ChaosVerdict {
  const keys = (fs: Finding[]) => new Set(fs.map(f => `${f.what}|${f.detail}`));
  const both = (x: Finding[], y: Finding[]) => {
    const k = keys(x);
    return y.filter(f => k.has(`${f.what}|${f.detail}`));
  };
  const dupKeys = new Set(a.duplicates.map(d => d.ip));
  return {
    duplicates: b.duplicates.filter(d => dupKeys.has(d.ip)),
    leaks: both(a.leaks, b.leaks),
    unleased: both(a.unleased, b.unleased),
    routes: both(a.routes, b.routes),
    status: both(a.status, b.status),
  };
}

/** One line per kind with its count, and the first few findings of each non-zero kind. */
export function verdictText(v: ChaosVerdict, max = 5): string {
  const lines: string[] = [];
  const kinds: [string, { toString(): string }[]][] = [
    ["duplicate addresses", v.duplicates.map(d => `${d.ip}: ${d.holders.join(", ")}`)],
    ["leases without a live pod beyond the TTL", v.leaks.map(f => `${f.what}: ${f.detail}`)],
    ["pods with an address but no lease", v.unleased.map(f => `${f.what}: ${f.detail}`)],
    ["route mismatches", v.routes.map(f => `${f.what}: ${f.detail}`)],
    ["subnet status mismatches", v.status.map(f => `${f.what}: ${f.detail}`)],
  ];
  for (const [name, items] of kinds) {
    lines.push(`${String(items.length).padStart(5)}  ${name}`);
    for (const i of items.slice(0, max)) lines.push(`         ${i.toString()}`);
  }
  return lines.join("\n");
}

export interface FaultRow {
  fault: string;
  /** Seconds since the run started. */
  at: number;
  did: string;
  /** Seconds from the injection until converged; undefined when it did not within the limit. */
  convergedAfter?: number;
}

/** The fault table the suite prints (markdown, so the results file can take it as is). */
export function faultTable(rows: FaultRow[]): string {
  const out = [
    "| fault | when (s into the run) | what the product did | time to converge |",
    "| --- | ---: | --- | ---: |",
  ];
  for (const r of rows)
    out.push(
      `| ${r.fault} | ${r.at.toFixed(0)} | ${r.did.replace(/\|/g, "/")} | ${
        r.convergedAfter === undefined ? "did not converge" : `${r.convergedAfter.toFixed(1)} s`
      } |`,
    );
  return out.join("\n");
}

/** A pod of the module or an agent, as the fault table compares them before and after. */
export interface PodState {
  name: string;
  uid: string;
  node: string;
  restarts: number;
  ready: boolean;
}

/** Which pods restarted, appeared or went between two looks. */
export function restartsBetween(before: PodState[], after: PodState[]): string[] {
  const was = new Map(before.map(p => [p.name, p]));
  const out: string[] = [];
  for (const p of after) {
    const b = was.get(p.name);
    if (!b) out.push(`${p.name} new`);
    else if (p.restarts > b.restarts) out.push(`${p.name} restarted ×${p.restarts - b.restarts}`);
  }
  for (const b of before) if (!after.some(p => p.name === b.name)) out.push(`${b.name} gone`);
  return out;
}

/**
 * The part of an API error that says why: the webhook's denial reason, or the cause of a failed
 * webhook call, without the request line and the webhook's name that every such error repeats.
 */
export function shortError(message: string): string {
  const denied = /denied the request: (.*)$/s.exec(message);
  if (denied) return `denied: ${denied[1]}`;
  const call = /failed calling webhook "[^"]*": (.*)$/s.exec(message);
  if (call) return `webhook call failed: ${call[1].replace(/Post "[^"]*": /, "")}`;
  return message.replace(/^(GET|POST|DELETE|PATCH|PUT) \S+: /, "");
}

/** Load errors in a window, grouped by message with digits masked (one line per kind). */
export function errorSummary(
  errors: { at: number; message: string }[],
  from: number,
  to: number,
): string {
  const by = new Map<string, number>();
  for (const e of errors.filter(x => x.at >= from && x.at <= to)) {
    const key = shortError(e.message).replace(/\d+/g, "N").slice(0, 120);
    by.set(key, (by.get(key) ?? 0) + 1);
  }
  if (!by.size) return "no load errors";
  return [...by]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([m, n]) => `${n}× ${m}`)
    .join("; ");
}
