// The agent's control loop: caches fed by watches, a coalesced reconcile trigger, a periodic
// resync, never two reconciles at once, and no reconcile before both caches have listed once
// (an empty cache would look like "no subnets, no pods" and tear everything down).
import type { AddressConflict, MacvlanSubnet } from "../crds/types";
import { plan, summarize, type Plan, type PodLike, type SubnetReadiness } from "./plan";
import type { KernelState, PlannedStep, StepResult } from "./types";

export interface KernelLike {
  observe(): Promise<KernelState>;
  apply(steps: PlannedStep[]): Promise<StepResult[]>;
}

export interface ReporterLike {
  report(readiness: Record<string, SubnetReadiness>, subnets: MacvlanSubnet[]): Promise<string[]>;
}

export type LogFn = (
  level: "debug" | "info" | "warn" | "error",
  msg: string,
  extra?: object,
) => void;

export interface ControllerOptions {
  node: string;
  kernel: KernelLike;
  reporter?: ReporterLike;
  nodeIPs?: string[];
  rpFilter?: "warn" | "loose";
  manageSysctls?: boolean;
  /** The LAN conflicts to report per subnet (agent/probe/prober.ts). */
  conflicts?: (subnet: string) => AddressConflict[];
  /** Plan only, never touch the kernel. */
  dryRun?: boolean;
  /** Periodic resync (default 30 s). */
  resyncMs?: number;
  /** Quiet period that coalesces bursts of watch events (default 200 ms). */
  debounceMs?: number;
  /** Retry delay after a failed reconcile (default 5 s). */
  retryMs?: number;
  log?: LogFn;
}

export interface ReconcileReport {
  plan: Plan;
  results: StepResult[];
  readiness: Record<string, SubnetReadiness>;
  durationMs: number;
  /** Subnets whose status could not be written (retried soon). */
  statusFailures: string[];
}

interface Meta {
  metadata?: { uid?: string; name?: string; namespace?: string; resourceVersion?: string };
}

/** uid-keyed cache that ignores events older than what it holds. */
export class Cache<T extends Meta> {
  private readonly items = new Map<string, T>();
  synced = false;

  private key(o: T): string | undefined {
    const m = o.metadata;
    return m?.uid ?? (m?.name ? `${m.namespace ?? ""}/${m.name}` : undefined);
  }

  replace(items: T[]): boolean {
    const before = this.signature();
    this.items.clear();
    for (const o of items) {
      const k = this.key(o);
      if (k) this.items.set(k, o);
    }
    this.synced = true;
    return before !== this.signature();
  }

  /** Applies a watch event; true when the cache changed. */
  apply(phase: "ADDED" | "MODIFIED" | "DELETED", o: T): boolean {
    const k = this.key(o);
    if (!k) return false;
    if (phase === "DELETED") return this.items.delete(k);
    const had = this.items.get(k);
    const rv = (x?: T) => Number(x?.metadata?.resourceVersion ?? NaN);
    if (had && rv(o) < rv(had)) return false; // out of order
    if (had && had.metadata?.resourceVersion === o.metadata?.resourceVersion) return false;
    this.items.set(k, o);
    return true;
  }

  values(): T[] {
    return [...this.items.values()];
  }

  private signature(): string {
    return [...this.items.entries()]
      .map(([k, v]) => `${k}@${v.metadata?.resourceVersion}`)
      .sort()
      .join(",");
  }
}

export class AgentController {
  readonly subnets = new Cache<MacvlanSubnet>();
  readonly pods = new Cache<PodLike & Meta>();
  private timer?: NodeJS.Timeout;
  private resyncTimer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private dirty = false;
  private stopped = false;
  private runs = 0;
  lastReport?: ReconcileReport;
  lastError?: unknown;
  lastSuccess?: Date;

  constructor(private readonly o: ControllerOptions) {}

  private log(level: Parameters<LogFn>[0], msg: string, extra?: object) {
    this.o.log?.(level, msg, extra);
  }

  get reconcileCount(): number {
    return this.runs;
  }

  get synced(): boolean {
    return this.subnets.synced && this.pods.synced;
  }

  // ---- inputs ----

  onSubnetList(items: MacvlanSubnet[]): void {
    if (this.subnets.replace(items) || !this.lastReport) this.trigger("subnet list");
  }
  onSubnetEvent(phase: "ADDED" | "MODIFIED" | "DELETED", s: MacvlanSubnet): void {
    if (this.subnets.apply(phase, s)) this.trigger(`subnet ${s.metadata?.name} ${phase}`);
  }
  onPodList(items: (PodLike & Meta)[]): void {
    if (this.pods.replace(items) || !this.lastReport) this.trigger("pod list");
  }
  onPodEvent(phase: "ADDED" | "MODIFIED" | "DELETED", p: PodLike & Meta): void {
    if (this.pods.apply(phase, p))
      this.trigger(`pod ${p.metadata?.namespace}/${p.metadata?.name} ${phase}`);
  }

  // ---- loop ----

  /** Starts the periodic resync. Reconciles begin once both caches have listed. */
  start(): void {
    this.stopped = false;
    const every = this.o.resyncMs ?? 30_000;
    this.resyncTimer = setInterval(() => this.trigger("resync"), every);
    this.resyncTimer.unref?.();
    this.trigger("start");
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.resyncTimer);
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /**
   * Asks for a reconcile. Bursts coalesce into one run after a short quiet period; a trigger
   * during a run causes exactly one more run after it.
   */
  trigger(reason: string): void {
    if (this.stopped) return;
    this.dirty = true;
    this.log("debug", "trigger", { reason });
    if (this.running || this.timer) return;
    this.schedule(this.o.debounceMs ?? 200);
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.loop().finally(() => {
        this.running = undefined;
        // A trigger that raced with the end of the loop, or a retry after a failure.
        const delay = this.retryDelay ?? this.o.debounceMs ?? 200;
        this.retryDelay = undefined;
        if (this.dirty && this.synced && !this.stopped && !this.timer) this.schedule(delay);
      });
    }, ms);
  }

  private retryDelay?: number;

  private async loop(): Promise<void> {
    // Before both caches have listed, nothing runs: the list handlers trigger again.
    while (this.dirty && this.synced && !this.stopped) {
      this.dirty = false;
      try {
        const r = await this.reconcileOnce();
        if (r.statusFailures.length) {
          this.dirty = true;
          this.retryDelay = this.o.retryMs ?? 5_000;
          return;
        }
      } catch (e) {
        this.lastError = e;
        this.log("error", "reconcile failed", {
          error: e instanceof Error ? e.message : String(e),
        });
        this.dirty = true;
        this.retryDelay = this.o.retryMs ?? 5_000;
        return;
      }
    }
  }

  /** One full pass: observe the kernel, plan, apply, report. Not re-entrant: use trigger(). */
  async reconcileOnce(): Promise<ReconcileReport> {
    const t0 = performance.now();
    this.runs++;
    const subnets = this.subnets.values();
    const state = await this.o.kernel.observe();
    const p = plan({
      node: this.o.node,
      subnets: subnets
        .filter(s => s.metadata?.name && s.spec)
        .map(s => ({ name: s.metadata!.name!, spec: s.spec! })),
      pods: this.pods.values(),
      kernel: state,
      nodeIPs: this.o.nodeIPs,
      rpFilter: this.o.rpFilter,
      manageSysctls: this.o.manageSysctls,
    });
    const results = this.o.dryRun ? [] : await this.o.kernel.apply(p.steps);
    for (const r of results) {
      const a = r.step.action;
      if (r.outcome === "ok") this.log("info", r.step.reason, { action: a });
      else if (r.outcome === "failed")
        this.log("warn", `failed: ${r.step.reason}`, { action: a, error: r.error });
    }
    if (this.o.dryRun)
      for (const s of p.steps) this.log("info", `would: ${s.reason}`, { action: s.action });
    const readiness = summarize(p, results);
    for (const [name, r] of Object.entries(readiness)) {
      const c = this.o.conflicts?.(name);
      if (c?.length) r.conflicts = c;
    }
    const statusFailures =
      this.o.reporter && !this.o.dryRun ? await this.o.reporter.report(readiness, subnets) : [];
    const durationMs = Math.round(performance.now() - t0);
    this.lastReport = { plan: p, results, readiness, durationMs, statusFailures };
    this.lastSuccess = new Date();
    this.log(p.steps.length ? "info" : "debug", "reconciled", {
      durationMs,
      steps: p.steps.length,
      failed: results.filter(r => r.outcome === "failed").length,
      subnets: Object.keys(readiness).length,
      podRoutes: p.pods.length,
      unresolvedPods: p.unresolved.length,
    });
    return this.lastReport;
  }
}
