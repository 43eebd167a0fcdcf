// Per-node readiness in MacvlanSubnet status.nodes[] and Events.
//
// Many agents write the same list, and KFC's server-side apply uses one hard-coded field
// manager ("pepr", shared with the operator), so applying an entry would drop the others.
// Instead each agent JSON-patches only its own entry on the status subresource, guarded by
// `test` operations (compare-and-swap), and retries on conflict with a fresh read:
// - entry present at index i: test /status/nodes/i/node == me, replace /status/nodes/i;
// - absent, list present:     add /status/nodes/- (appends commute; a vanished list fails);
// - no list (or duplicates):  test /metadata/resourceVersion, write the whole list.
// No write happens when the entry already says the same (lastUpdateTime aside).
import type { Operation } from "kubernetes-fluent-client";
import type { MacvlanSubnet, NodeReadiness } from "../crds/types";
import type { Reason, SubnetReadiness } from "./plan";

/** The entry an agent wants for its node. */
export function nodeEntry(node: string, r: SubnetReadiness, now: Date): NodeReadiness {
  const e: NodeReadiness = {
    node,
    ready: r.ready,
    message: r.message,
    lastUpdateTime: now.toISOString(),
  };
  if (r.shim) e.shim = r.shim;
  if (r.source) e.source = r.source;
  if (r.conflicts?.length) e.conflicts = r.conflicts;
  return e;
}

/** Same content, ignoring lastUpdateTime. */
export function sameEntry(a: NodeReadiness | undefined, b: NodeReadiness | undefined): boolean {
  if (!a || !b) return a === b;
  return (
    a.node === b.node &&
    a.ready === b.ready &&
    (a.shim ?? "") === (b.shim ?? "") &&
    (a.source ?? "") === (b.source ?? "") &&
    conflictKey(a) === conflictKey(b) &&
    (a.message ?? "") === (b.message ?? "")
  );
}

const conflictKey = (e: NodeReadiness) =>
  (e.conflicts ?? []).map(c => `${c.ip}@${c.mac}`).join(",");

export function currentEntry(subnet: MacvlanSubnet, node: string): NodeReadiness | undefined {
  return subnet.status?.nodes?.find(n => n?.node === node);
}

/** JSON patch that sets this node's entry, or undefined when it is already right. */
export function statusPatch(subnet: MacvlanSubnet, want: NodeReadiness): Operation[] | undefined {
  const nodes = subnet.status?.nodes;
  const mine = (nodes ?? []).flatMap((n, i) => (n?.node === want.node ? [i] : []));
  if (mine.length === 1 && sameEntry(nodes![mine[0]], want)) return undefined;
  if (mine.length === 1) {
    const i = mine[0];
    return [
      { op: "test", path: `/status/nodes/${i}/node`, value: want.node },
      { op: "replace", path: `/status/nodes/${i}`, value: want },
    ];
  }
  if (Array.isArray(nodes) && mine.length === 0) {
    // Appends by other nodes commute; a list removed meanwhile makes the add fail (retry).
    return [{ op: "add", path: "/status/nodes/-", value: want }];
  }
  // No list yet, or this node listed twice: rewrite the list under a resourceVersion guard.
  const rv = subnet.metadata?.resourceVersion;
  const list = [...(nodes ?? []).filter(n => n?.node !== want.node), want];
  const ops: Operation[] = [];
  if (rv) ops.push({ op: "test", path: "/metadata/resourceVersion", value: rv });
  if (subnet.status) ops.push({ op: "add", path: "/status/nodes", value: list });
  else ops.push({ op: "add", path: "/status", value: { nodes: list } });
  return ops;
}

/** What the reporter needs from the apiserver (KFC in production, a fake in tests). */
export interface StatusApi {
  getSubnet(name: string): Promise<MacvlanSubnet>;
  /** JSON patch on /status; rejects with `{status: 409|422}` when a test op fails. */
  patchSubnetStatus(name: string, ops: Operation[]): Promise<void>;
  createEvent(e: AgentEvent): Promise<void>;
}

export interface AgentEvent {
  subnet: MacvlanSubnet;
  type: "Normal" | "Warning";
  reason: Reason;
  message: string;
}

export interface ReporterOptions {
  node: string;
  api: StatusApi;
  attempts?: number;
  now?: () => Date;
  log?: (level: "info" | "warn" | "error" | "debug", msg: string, extra?: object) => void;
}

const statusOf = (e: unknown) => (e as { status?: number } | undefined)?.status;

export class StatusReporter {
  /** Last readiness reported per subnet uid, for Events on transitions. */
  private readonly last = new Map<string, { ready: boolean; reason: Reason }>();

  constructor(private readonly o: ReporterOptions) {}

  /**
   * Writes this node's entry where the cached subnet differs from `readiness`, and an Event
   * when a subnet's readiness or reason changes. Returns the subnets whose write failed.
   */
  async report(
    readiness: Record<string, SubnetReadiness>,
    subnets: MacvlanSubnet[],
  ): Promise<string[]> {
    const failed: string[] = [];
    const now = this.o.now ?? (() => new Date());
    for (const s of subnets) {
      const name = s.metadata?.name;
      const r = name ? readiness[name] : undefined;
      if (!name || !r) continue;
      const want = nodeEntry(this.o.node, r, now());
      if (!sameEntry(currentEntry(s, this.o.node), want)) {
        try {
          const wrote = await this.write(name, want);
          if (wrote)
            this.o.log?.("info", "status updated", {
              subnet: name,
              ready: r.ready,
              message: r.message,
            });
        } catch (e) {
          failed.push(name);
          this.o.log?.("warn", "status update failed", { subnet: name, error: errText(e) });
          continue;
        }
      }
      const key = s.metadata?.uid ?? name;
      const prev = this.last.get(key);
      if (!prev || prev.ready !== r.ready || prev.reason !== r.reason) {
        // On the first pass after a start, only say something when it is not good news
        // the status already showed.
        const quiet = !prev && sameEntry(currentEntry(s, this.o.node), want);
        if (!quiet) {
          await this.o.api
            .createEvent({
              subnet: s,
              type: r.ready ? "Normal" : "Warning",
              reason: r.reason,
              message: r.message,
            })
            .catch(e => this.o.log?.("warn", "event failed", { subnet: name, error: errText(e) }));
        }
        this.last.set(key, { ready: r.ready, reason: r.reason });
      }
    }
    return failed;
  }

  /** Compare-and-swap loop; true when it wrote, false when the entry was already right. */
  async write(name: string, want: NodeReadiness): Promise<boolean> {
    const attempts = this.o.attempts ?? 6;
    for (let i = 1; ; i++) {
      const fresh = await this.o.api.getSubnet(name);
      const ops = statusPatch(fresh, want);
      if (!ops) return false;
      try {
        await this.o.api.patchSubnetStatus(name, ops);
        return true;
      } catch (e) {
        const st = statusOf(e);
        if ((st === 409 || st === 422) && i < attempts) {
          await sleep(Math.min(50 * 2 ** i, 1000) * (0.5 + Math.random()));
          continue;
        }
        throw e;
      }
    }
  }

  forget(uid: string): void {
    this.last.delete(uid);
  }
}

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));

export function errText(e: unknown): string {
  if (e instanceof Error) return e.message;
  const o = e as { status?: number; statusText?: string; data?: { message?: string } } | undefined;
  if (o && typeof o === "object" && ("status" in o || "data" in o)) {
    return `${o.status ?? ""} ${o.statusText ?? ""} ${o.data?.message ?? ""}`.trim();
  }
  return String(e);
}
