// An in-memory KubePort that keeps the API server's rules the operator relies on: creates fail
// with 409 AlreadyExists, preconditions fail like the real server (422 for a failed JSON-patch
// test, 409 for a delete precondition), and every write bumps the resourceVersion.
import { a } from "pepr";
import {
  MacvlanLease,
  MacvlanLeaseSpec,
  MacvlanLeaseStatus,
  MacvlanSubnet,
} from "../../../crds/types";
import { KubePort } from "../../../capabilities/k8s/port";
import { EventTarget, Precondition } from "../../../lib/decide/writes";
import { NamespaceInfo } from "../../../lib/selection";

const failedTest = () => ({
  status: 422,
  data: { message: "the server rejected our request due to an error in our request" },
});

export class FakePort implements KubePort {
  leases = new Map<string, MacvlanLease>();
  pods = new Map<string, a.Pod>();
  subnets = new Map<string, MacvlanSubnet>();
  namespaces: NamespaceInfo[] = [];
  events: { reason: string; message: string; target: EventTarget }[] = [];
  writes: string[] = [];
  private rv = 1000;

  put(lease: MacvlanLease): MacvlanLease {
    const copy = structuredClone(lease);
    copy.metadata = { ...copy.metadata, resourceVersion: String(++this.rv) };
    this.leases.set(copy.metadata.name!, copy);
    return structuredClone(copy);
  }

  private check(lock: Precondition): MacvlanLease {
    const current = this.leases.get(lock.name);
    if (!current) throw { status: 404, data: { message: "not found" } };
    if (lock.uid && current.metadata?.uid !== lock.uid) throw failedTest();
    if (lock.resourceVersion && current.metadata?.resourceVersion !== lock.resourceVersion)
      throw failedTest();
    return current;
  }

  async getLease(name: string) {
    const l = this.leases.get(name);
    return l && structuredClone(l);
  }
  async listLeases() {
    return [...this.leases.values()].map(l => structuredClone(l));
  }
  async createLease(lease: MacvlanLease) {
    this.writes.push(`create ${lease.metadata!.name}`);
    if (this.leases.has(lease.metadata!.name!))
      throw { status: 409, data: { reason: "AlreadyExists" } };
    return this.put({
      ...lease,
      metadata: { ...lease.metadata, uid: `uid-${lease.metadata!.name}` },
    });
  }
  async patchLease(
    lock: Precondition,
    spec: Partial<MacvlanLeaseSpec>,
    annotations?: Record<string, string>,
    labels?: Record<string, string>,
  ) {
    this.writes.push(`patch ${lock.name}@${lock.resourceVersion}`);
    const current = this.check(lock);
    return this.put({
      ...current,
      metadata: {
        ...current.metadata,
        ...(annotations ? { annotations } : {}),
        ...(labels ? { labels } : {}),
      },
      spec: { ...current.spec!, ...spec },
    });
  }
  async setLeaseStatus(lock: Precondition, status: MacvlanLeaseStatus) {
    this.writes.push(`status ${lock.name}@${lock.resourceVersion} ${status.phase}`);
    return this.put({ ...this.check(lock), status });
  }
  async deleteLease(lock: Precondition) {
    this.writes.push(`delete ${lock.name}@${lock.resourceVersion}`);
    const current = this.leases.get(lock.name);
    if (!current) return;
    if (lock.resourceVersion && current.metadata?.resourceVersion !== lock.resourceVersion)
      throw { status: 409, data: { reason: "Conflict", message: "Precondition failed" } };
    this.leases.delete(lock.name);
  }
  async getPod(namespace: string, name: string) {
    return this.pods.get(`${namespace}/${name}`);
  }
  async listPods() {
    return [...this.pods.values()];
  }
  async getSubnet(name: string) {
    return this.subnets.get(name);
  }
  async listSubnets() {
    return [...this.subnets.values()];
  }
  async listNamespaces() {
    return this.namespaces;
  }
  async getNamespace(name: string) {
    return this.namespaces.find(ns => ns.name === name);
  }
  async getStatefulSet() {
    return undefined;
  }
  async event(target: EventTarget, _type: string, reason: string, message: string) {
    this.events.push({ target, reason, message });
  }
}
