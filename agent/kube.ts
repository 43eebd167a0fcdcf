// The agent's apiserver access through kubernetes-fluent-client: watches (subnets, and pods on
// this node only), status patches and Events. Config comes from KUBECONFIG or in-cluster.
import { randomBytes } from "node:crypto";
import { K8s, kind, WatchEvent, type Operation } from "kubernetes-fluent-client";
import { LeaseGVK, SubnetGVK } from "../crds/types";
import { MacvlanLease, MacvlanSubnet } from "../crds/kinds";
import type { AgentEvent, StatusApi } from "./status";

/** No global RegisterKind: the operator's code may register the same class. */
const subnets = (name?: string) =>
  K8s(MacvlanSubnet, name ? { kindOverride: SubnetGVK, name } : { kindOverride: SubnetGVK });

export type Phase = "ADDED" | "MODIFIED" | "DELETED";

export interface WatchHandlers<T> {
  /** A full list (initial or periodic relist): the authoritative set. */
  list(items: T[]): void;
  event(phase: Phase, obj: T): void;
  error?(what: string, err: unknown): void;
}

export interface Stoppable {
  stop(): void;
}

interface WatcherLike {
  events: NodeJS.EventEmitter;
  start(): Promise<AbortController>;
  close(): void;
}

function wire<T>(w: WatcherLike, h: WatchHandlers<T>, what: string): Stoppable {
  w.events.on(WatchEvent.LIST, (list: { items?: T[]; metadata?: { continue?: string } }) => {
    // KFC lists without a limit: one page is the whole set. Never replace on a partial page.
    if (!list?.metadata?.continue) h.list(list?.items ?? []);
  });
  for (const ev of [
    WatchEvent.LIST_ERROR,
    WatchEvent.WATCH_ERROR,
    WatchEvent.DATA_ERROR,
    WatchEvent.NETWORK_ERROR,
  ]) {
    w.events.on(ev, (err: unknown) => h.error?.(`${what} ${ev}`, err));
  }
  void w.start().catch(err => h.error?.(`${what} start`, err));
  return { stop: () => w.close() };
}

export function watchSubnets(h: WatchHandlers<MacvlanSubnet>): Stoppable {
  const w = subnets().Watch((obj, phase) => h.event(phase as Phase, obj));
  return wire(w as unknown as WatcherLike, h, "subnets");
}

/** Every MacvlanLease (read-only): the conflict prober skips our own leases' MACs. */
export function watchLeases(h: WatchHandlers<MacvlanLease>): Stoppable {
  const w = K8s(MacvlanLease, { kindOverride: LeaseGVK }).Watch((obj, phase) =>
    h.event(phase as Phase, obj),
  );
  return wire(w as unknown as WatcherLike, h, "leases");
}

export function watchPods(
  node: string,
  h: WatchHandlers<InstanceType<typeof kind.Pod>>,
): Stoppable {
  const w = K8s(kind.Pod)
    .WithField("spec.nodeName", node)
    .Watch((obj, phase) => h.event(phase as Phase, obj));
  return wire(w as unknown as WatcherLike, h, "pods");
}

export interface KfcStatusApiOptions {
  node: string;
  /** Namespace for Events about (cluster-scoped) subnets; kubectl looks in all. */
  eventNamespace: string;
  component?: string;
}

export class KfcStatusApi implements StatusApi {
  constructor(private readonly o: KfcStatusApiOptions) {}

  getSubnet(name: string): Promise<MacvlanSubnet> {
    return subnets().Get(name);
  }

  /**
   * JSON patch on the status subresource. KFC's Patch targets the main resource and its
   * PatchStatus is a merge patch without preconditions; naming the object `<name>/status`
   * makes KFC's path builder produce `/apis/macvlan.dev/v1alpha1/macvlansubnets/<name>/status`
   * (subnet names are DNS subdomains, they never contain a slash).
   */
  async patchSubnetStatus(name: string, ops: Operation[]): Promise<void> {
    if (name.includes("/")) throw new Error(`bad subnet name ${name}`);
    await subnets(`${name}/status`).Patch(ops);
  }

  async createEvent(e: AgentEvent): Promise<void> {
    const now = new Date();
    const component = this.o.component ?? "pepr-macvlan-agent";
    const name = `${e.subnet.metadata?.name ?? "subnet"}.${now.getTime().toString(16)}${randomBytes(3).toString("hex")}`;
    await K8s(kind.CoreEvent).Create({
      apiVersion: "v1",
      kind: "Event",
      metadata: { name, namespace: this.o.eventNamespace },
      involvedObject: {
        apiVersion: `${SubnetGVK.group}/${SubnetGVK.version}`,
        kind: SubnetGVK.kind,
        name: e.subnet.metadata?.name,
        uid: e.subnet.metadata?.uid,
        resourceVersion: e.subnet.metadata?.resourceVersion,
      },
      type: e.type,
      reason: e.reason,
      message: `${this.o.node}: ${e.message}`.slice(0, 1000),
      source: { component, host: this.o.node },
      reportingComponent: `macvlan.dev/${component}`,
      reportingInstance: this.o.node,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    });
  }
}
