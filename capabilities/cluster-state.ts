// The admission replicas' view of the cluster: namespaces, subnets and leases, cached by watches,
// plus one allocator per subnet rebuilt from the leases. The apiserver stays the truth:
// an allocator only proposes candidates, the lease Create (409 on a taken name) decides.
import { kind } from "kubernetes-fluent-client";
import { Log } from "pepr";
import { MacvlanLease, MacvlanSubnet } from "./k8s/kinds";
import { Informer, Phase } from "./k8s/informer";
import { kfcPort } from "./k8s/port";
import { kubeRequest, paths } from "./k8s/transport";
import { describe, getIfExists } from "../lib/k8s/errors";
import { Allocator, allocatorFromLeases, observeLease } from "../lib/decide/allocators";
import { NamespaceInfo } from "../lib/selection";
import { settings } from "../lib/mode";
import { stickyKey } from "../lib/owner";

interface PoolEntry {
  generation: number;
  allocator: Allocator;
}

export class ClusterState {
  readonly namespaces = new Informer(kind.Namespace);
  readonly subnets = new Informer(MacvlanSubnet);
  readonly leases = new Informer(MacvlanLease);
  readonly #pools = new Map<string, PoolEntry>();
  readonly #byOwner = new Map<string, string>();

  constructor() {
    this.leases.onChange((lease, phase, previous) => this.#onLease(lease, phase, previous));
    this.subnets.onChange((subnet, phase) => {
      const name = subnet.metadata!.name!;
      const entry = this.#pools.get(name);
      if (phase === "DELETED" || (entry && entry.generation !== subnet.metadata?.generation)) {
        this.#pools.delete(name);
      }
    });
  }

  #onLease(lease: MacvlanLease, phase: Phase, previous?: MacvlanLease): void {
    const name = lease.metadata!.name!;
    // The owner index points at one lease per ordinal: drop a mapping only if it is this lease's.
    const before = previous?.spec?.owner && stickyKey(previous.spec.owner, previous.spec.ip);
    if (before && this.#byOwner.get(before) === name) this.#byOwner.delete(before);
    const owner = lease.spec?.owner;
    if (owner && phase !== "DELETED") this.#byOwner.set(stickyKey(owner, lease.spec?.ip), name);
    const entry = this.#pools.get(lease.spec?.subnet ?? "");
    if (!entry) return;
    try {
      // forget() keeps a released address's place in the reuse order (lib/ipam "recycled"):
      // reuse keeps preferring the least recently released address after its lease is gone.
      if (phase === "DELETED") entry.allocator.forget(lease.spec!.ip);
      else observeLease(entry.allocator, lease);
    } catch (e) {
      Log.warn(`lease ${name} ignored by the allocator: ${describe(e)}`);
    }
  }

  /** Every cached subnet by name (admission's bypass check needs all of them). */
  subnetsByName(): Map<string, MacvlanSubnet> {
    return new Map(this.subnets.list().map(s => [s.metadata!.name!, s]));
  }

  leasesOf(subnet: string): MacvlanLease[] {
    return this.leases.list().filter(l => l.spec?.subnet === subnet);
  }

  #ready?: Promise<void>;

  start(): Promise<void> {
    this.#ready ??= Promise.all([
      this.namespaces.start(),
      this.subnets.start(),
      this.leases.start(),
    ]).then(() => Log.info("pepr-macvlan: namespace, subnet and lease caches are ready"));
    return this.#ready;
  }

  /** Waits for the caches; an allocator built before the leases are known would guess badly. */
  async ready(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>(r => (timer = setTimeout(() => r(false), timeoutMs)));
    const result = await Promise.race([this.start().then(() => true), timeout]);
    clearTimeout(timer);
    return result;
  }

  /** A namespace's labels; read through on a cache miss (namespace and pod in one apply). */
  async namespace(name: string): Promise<NamespaceInfo | undefined> {
    let ns = this.namespaces.get(name);
    if (!ns) {
      ns = await getIfExists(() =>
        kubeRequest<InstanceType<typeof kind.Namespace>>(
          "GET",
          paths.core("namespaces", undefined, name),
        ),
      );
      if (!ns) return undefined;
      this.namespaces.upsert(ns);
    }
    return { name, labels: ns.metadata?.labels ?? {} };
  }

  async subnet(name: string): Promise<MacvlanSubnet | undefined> {
    const cached = this.subnets.get(name);
    if (cached) return cached;
    const subnet = (await kfcPort.getSubnet(name)) as MacvlanSubnet | undefined;
    if (subnet) this.subnets.upsert(subnet);
    return subnet;
  }

  allocator(subnet: MacvlanSubnet): Allocator {
    const name = subnet.metadata!.name!;
    const generation = subnet.metadata?.generation ?? 0;
    let entry = this.#pools.get(name);
    if (!entry || entry.generation !== generation) {
      const leases = this.leases.list().filter(l => l.spec?.subnet === name);
      const options = { scan: settings.scanStart };
      entry = { generation, allocator: allocatorFromLeases(subnet, leases, options) };
      this.#pools.set(name, entry);
    }
    return entry.allocator;
  }

  leaseByOwner(key: string): MacvlanLease | undefined {
    const name = this.#byOwner.get(key);
    return name ? this.leases.get(name) : undefined;
  }
}
