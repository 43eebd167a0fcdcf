// LAN conflict probing, the decisions (pure, no clock: `now` comes in). Which addresses an agent
// probes and when (planProbes), and what the answers mean (applyAnswers). The raw ARP/NDP I/O is
// agent/probe/runner.ts (the pmv-probe helper); the loop is agent/probe/prober.ts.
//
// Order of each tick, within a token bucket of `ratePerSecond` (burst `maxBatch`):
//   1. unbound leases (a pool's pre-leased addresses, Reserved ones not bound yet, Released ones
//      about to be reused): these are the next addresses admission hands out;
//   2. known conflicts, every `recheckMs`, to see whether the foreign host is still there;
//   3. a sweep over the pool's free addresses from a cursor that wraps around, each address at
//      most every `sweepIntervalMs`, so that a random pick by admission was probed too.
// Pod start never waits for any of this: admission reads only the leases the operator wrote.
import type { AddressConflict } from "../../crds/types";
import { bigIntToIp, tryParseIp } from "../../lib/ipam/address";
import type { UsablePool } from "../../lib/ipam/pool";

export interface ProbeSettings {
  /** Probes per second per agent, all subnets together. */
  ratePerSecond: number;
  /** Most probes in one tick (the bucket's size). */
  maxBatch: number;
  /** How often an unbound lease or a known conflict is probed again. */
  recheckMs: number;
  /** How often the sweep may probe the same free address again. */
  sweepIntervalMs: number;
  /** A conflict is dropped once its address has not answered for this long. */
  holdMs: number;
}

export const DEFAULT_PROBE_SETTINGS: ProbeSettings = {
  ratePerSecond: 20,
  maxBatch: 32,
  recheckMs: 10_000,
  sweepIntervalMs: 300_000,
  holdMs: 60_000,
};

/** What the agent knows of a lease of the subnet. */
export interface ProbeLease {
  ip: string;
  mac?: string;
  phase?: string;
  /** A pod is bound to it (its own net1 answers, from the lease's MAC). */
  bound: boolean;
}

export interface ProbeSubnet {
  name: string;
  /** The device to probe on (the subnet's parent on this node). */
  parent: string;
  pool: UsablePool;
  leases: ProbeLease[];
}

export interface ProbeTarget {
  subnet: string;
  parent: string;
  ip: string;
  why: "unbound" | "conflict" | "sweep";
}

export interface KnownConflict {
  subnet: string;
  ip: string;
  mac: string;
  /** First answer, epoch ms. */
  since: number;
  /** Last answer, epoch ms. */
  lastSeen: number;
}

/** The prober's memory: one object, replaced by each decision (never shared mutably). */
export interface ProbeState {
  /** subnet|ip → epoch ms of the last probe. */
  lastProbed: Map<string, number>;
  /** subnet → next sweep index into the pool. */
  cursor: Map<string, bigint>;
  conflicts: Map<string, KnownConflict>;
  /** Token bucket. */
  tokens: number;
  lastTick?: number;
}

export const emptyProbeState = (): ProbeState => ({
  lastProbed: new Map(),
  cursor: new Map(),
  conflicts: new Map(),
  tokens: 0,
});

const key = (subnet: string, ip: string) => `${subnet}|${ip}`;

/** Canonical text of an address, or undefined. */
function canon(ip: string): string | undefined {
  const p = tryParseIp(ip.trim());
  return p && bigIntToIp(p.family, p.value);
}

function due(state: ProbeState, k: string, now: number, everyMs: number): boolean {
  const at = state.lastProbed.get(k);
  return at === undefined || now - at >= everyMs;
}

/** Refills the bucket: the number of probes this tick may send. */
function refill(state: ProbeState, now: number, s: ProbeSettings): number {
  const elapsed = state.lastTick === undefined ? 1000 : Math.max(0, now - state.lastTick);
  return Math.min(s.maxBatch, state.tokens + (s.ratePerSecond * elapsed) / 1000);
}

/** Steps 1 and 2: unbound leases and known conflicts that are due. */
function priorityTargets(
  subnets: ProbeSubnet[],
  state: ProbeState,
  now: number,
  s: ProbeSettings,
): ProbeTarget[] {
  const out: ProbeTarget[] = [];
  for (const sub of subnets) {
    for (const l of sub.leases) {
      const ip = canon(l.ip);
      if (!ip || l.bound || l.phase === "Conflict") continue;
      if (due(state, key(sub.name, ip), now, s.recheckMs))
        out.push({ subnet: sub.name, parent: sub.parent, ip, why: "unbound" });
    }
  }
  for (const c of state.conflicts.values()) {
    const sub = subnets.find(x => x.name === c.subnet);
    if (sub && due(state, key(c.subnet, c.ip), now, s.recheckMs))
      out.push({ subnet: c.subnet, parent: sub.parent, ip: c.ip, why: "conflict" });
  }
  return out;
}

/** Step 3: up to `n` free addresses of one subnet from its cursor; returns the new cursor. */
function sweep(
  sub: ProbeSubnet,
  state: ProbeState,
  now: number,
  n: number,
  s: ProbeSettings,
  out: ProbeTarget[],
): bigint {
  const span = sub.pool.span;
  let k = state.cursor.get(sub.name) ?? 0n;
  if (span === 0n || n <= 0) return k;
  const leased = new Set(sub.leases.map(l => canon(l.ip)));
  // Look at a bounded number of addresses per tick, however many are skipped.
  const looks = BigInt(Math.min(Number(span), n * 4));
  for (let i = 0n; i < looks && n > 0; i++) {
    if (k >= span) k = 0n;
    const v = sub.pool.addressAt(k);
    k++;
    if (!sub.pool.contains(v)) continue; // an RFC 2526 address of a periodic-anycast pool
    const ip = bigIntToIp(sub.pool.family, v);
    const kk = key(sub.name, ip);
    if (leased.has(ip) || state.conflicts.has(kk) || !due(state, kk, now, s.sweepIntervalMs))
      continue;
    out.push({ subnet: sub.name, parent: sub.parent, ip, why: "sweep" });
    n--;
  }
  return k >= span ? 0n : k;
}

/**
 * The probes to send now, and the state after sending them (their lastProbed stamped, the bucket
 * spent, sweep cursors moved). The sweep budget is shared round-robin between subnets.
 */
export function planProbes(
  subnets: ProbeSubnet[],
  state: ProbeState,
  now: number,
  s: ProbeSettings = DEFAULT_PROBE_SETTINGS,
): { targets: ProbeTarget[]; state: ProbeState } {
  let tokens = refill(state, now, s);
  const targets = priorityTargets(subnets, state, now, s).slice(0, Math.floor(tokens));
  tokens -= targets.length;
  const cursor = new Map(state.cursor);
  const live = subnets.filter(x => x.pool.span > 0n);
  const share = live.length ? Math.floor(tokens / live.length) : 0;
  for (const sub of live) {
    const before = targets.length;
    cursor.set(sub.name, sweep(sub, state, now, share, s, targets));
    tokens -= targets.length - before;
  }
  const lastProbed = new Map(state.lastProbed);
  for (const t of targets) lastProbed.set(key(t.subnet, t.ip), now);
  for (const [k, at] of lastProbed) if (now - at > s.sweepIntervalMs) lastProbed.delete(k);
  return { targets, state: { ...state, tokens, lastTick: now, lastProbed, cursor } };
}

export interface ProbeAnswer {
  ip: string;
  mac: string;
}

/** MACs that are ours in a subnet: every lease's but the Conflict ones (those are foreign). */
function ourMacs(sub: ProbeSubnet | undefined): Set<string> {
  return new Set(
    (sub?.leases ?? []).filter(l => l.phase !== "Conflict" && l.mac).map(l => l.mac!.toLowerCase()),
  );
}

/**
 * What the answers to `targets` mean: an address answering from a MAC that is not one of our
 * leases' (nor this node's own) is in use on the LAN; an answer from our MAC clears it; a known
 * conflict that has not answered for `holdMs` is dropped. `changed`: the reported set differs.
 */
export function applyAnswers(
  state: ProbeState,
  subnets: ProbeSubnet[],
  targets: ProbeTarget[],
  answers: ProbeAnswer[],
  now: number,
  s: ProbeSettings = DEFAULT_PROBE_SETTINGS,
  nodeMacs: Set<string> = new Set(),
): { state: ProbeState; changed: boolean } {
  const conflicts = new Map(state.conflicts);
  let changed = false;
  const byIp = new Map<string, string[]>();
  for (const a of answers) {
    const ip = canon(a.ip);
    if (ip) byIp.set(ip, [...(byIp.get(ip) ?? []), a.mac.toLowerCase()]);
  }
  for (const t of targets) {
    const k = key(t.subnet, t.ip);
    const ours = ourMacs(subnets.find(x => x.name === t.subnet));
    const macs = byIp.get(t.ip) ?? [];
    const foreign = macs.filter(m => !ours.has(m) && !nodeMacs.has(m)).sort();
    const had = conflicts.get(k);
    if (foreign.length) {
      const mac = had && foreign.includes(had.mac) ? had.mac : foreign[0];
      conflicts.set(k, {
        subnet: t.subnet,
        ip: t.ip,
        mac,
        since: had?.since ?? now,
        lastSeen: now,
      });
      changed ||= !had || had.mac !== mac;
    } else if (had && (macs.length > 0 || now - had.lastSeen >= s.holdMs)) {
      conflicts.delete(k);
      changed = true;
    }
  }
  // Conflicts of subnets that are gone (or left this node's parent) are not reported any more.
  for (const [k, c] of conflicts)
    if (!subnets.some(x => x.name === c.subnet)) changed = conflicts.delete(k) || changed;
  return { state: { ...state, conflicts }, changed };
}

/** The conflicts an agent reports for one subnet, in address order. */
export function reportedConflicts(state: ProbeState, subnet: string): AddressConflict[] {
  return [...state.conflicts.values()]
    .filter(c => c.subnet === subnet)
    .sort((a, b) => compareIps(a.ip, b.ip))
    .map(c => ({ ip: c.ip, mac: c.mac, since: new Date(c.since).toISOString() }));
}

function compareIps(a: string, b: string): number {
  const x = tryParseIp(a)?.value ?? 0n;
  const y = tryParseIp(b)?.value ?? 0n;
  return x < y ? -1 : x > y ? 1 : 0;
}
