// The probing loop: every tick, ask the pure planner (agent/probe/plan.ts) what to probe on which
// parent, run the probes (agent/probe/runner.ts), fold the answers in, and when the set of
// conflicts changed, have the controller write them into this node's status entry. It runs beside
// the reconcile loop and never delays it (nor, so, a pod's start).
import type { AddressConflict, MacvlanLease, MacvlanSubnet } from "../../crds/types";
import { ANN_CONFLICT } from "../../lib/decide/conflicts";
import { usablePool } from "../../lib/ipam/pool";
import type { LogFn } from "../controller";
import type { SubnetReadiness } from "../plan";
import {
  applyAnswers,
  DEFAULT_PROBE_SETTINGS,
  emptyProbeState,
  planProbes,
  reportedConflicts,
  type ProbeSettings,
  type ProbeSubnet,
  type ProbeTarget,
} from "./plan";
import type { ProbeRunner } from "./runner";

export interface ProberInputs {
  subnets(): MacvlanSubnet[];
  leases(): MacvlanLease[];
  /** This node's last readiness and parent per subnet (only ready subnets are probed). */
  readiness(): Record<string, SubnetReadiness & { parent?: string }> | undefined;
  /** The set of conflicts changed: report it. */
  changed(): void;
}

export interface ProberOptions {
  runner: ProbeRunner;
  settings?: Partial<ProbeSettings>;
  tickMs?: number;
  log?: LogFn;
  now?: () => number;
}

/** The subnets to probe now, with their pools and what the agent knows of their leases. */
export function probeSubnets(
  subnets: MacvlanSubnet[],
  leases: MacvlanLease[],
  readiness: Record<string, SubnetReadiness & { parent?: string }>,
): ProbeSubnet[] {
  const out: ProbeSubnet[] = [];
  for (const s of subnets) {
    const name = s.metadata?.name;
    const r = name ? readiness[name] : undefined;
    if (!name || !s.spec || !r?.ready || !r.parent || s.metadata?.deletionTimestamp) continue;
    let pool;
    try {
      pool = usablePool(name, s.spec);
    } catch {
      continue; // the operator reports an invalid spec
    }
    const mine = leases.filter(l => l.spec?.subnet === name && l.spec.ip);
    out.push({
      name,
      parent: r.parent,
      pool,
      leases: mine.map(l => ({
        ip: l.spec!.ip,
        mac: l.spec!.mac,
        // A Conflict lease is marked from its creation, before its status is written.
        phase: l.metadata?.annotations?.[ANN_CONFLICT] === "true" ? "Conflict" : l.status?.phase,
        bound:
          !!l.spec!.podRef?.uid && l.status?.phase !== "Released" && l.status?.phase !== "Conflict",
      })),
    });
  }
  return out;
}

export class ConflictProber {
  private state = emptyProbeState();
  private timer?: NodeJS.Timeout;
  private busy = false;
  readonly settings: ProbeSettings;
  /** Probes sent since start (for the figures in docs/ipv6.md). */
  sent = 0;

  constructor(
    private readonly inputs: ProberInputs,
    private readonly o: ProberOptions,
  ) {
    this.settings = { ...DEFAULT_PROBE_SETTINGS, ...o.settings };
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.o.tickMs ?? 500);
    this.timer.unref?.();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  conflicts(subnet: string): AddressConflict[] {
    return reportedConflicts(this.state, subnet);
  }

  /** One round; overlapping rounds are skipped. */
  async tick(): Promise<void> {
    const readiness = this.inputs.readiness();
    if (this.busy || !readiness) return;
    this.busy = true;
    try {
      const subnets = probeSubnets(this.inputs.subnets(), this.inputs.leases(), readiness);
      const now = this.o.now ?? Date.now;
      const planned = planProbes(subnets, this.state, now(), this.settings);
      this.state = planned.state;
      const { answers, failed } = await this.run(planned.targets);
      // A parent whose probe failed tells nothing: its conflicts neither appear nor expire.
      const probed = planned.targets.filter(t => !failed.has(t.parent));
      const r = applyAnswers(this.state, subnets, probed, answers, now(), this.settings);
      this.state = r.state;
      if (r.changed) {
        this.o.log?.("info", "LAN conflicts changed", {
          conflicts: [...r.state.conflicts.values()].map(c => `${c.subnet}:${c.ip}@${c.mac}`),
        });
        this.inputs.changed();
      }
    } finally {
      this.busy = false;
    }
  }

  private async run(targets: ProbeTarget[]) {
    const byParent = new Map<string, string[]>();
    for (const t of targets) byParent.set(t.parent, [...(byParent.get(t.parent) ?? []), t.ip]);
    const answers = [];
    const failed = new Set<string>();
    for (const [dev, ips] of byParent) {
      try {
        answers.push(...(await this.o.runner.probe(dev, [...new Set(ips)])));
        this.sent += ips.length;
      } catch (e) {
        failed.add(dev);
        this.o.log?.("warn", "probe failed", {
          dev,
          error: e instanceof Error ? e.message : String(e),
        });
      }
    }
    return { answers, failed };
  }
}
