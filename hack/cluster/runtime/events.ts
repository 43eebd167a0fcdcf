// Kubernetes Events as the kubelet writes them (source component "kubelet"), with the kubelet's
// aggregation of repeats: the same reason and message for the same object bumps `count`.
import { randomBytes } from "node:crypto";
import { Kube } from "../kube";

export interface InvolvedPod {
  namespace: string;
  name: string;
  uid: string;
}

const micro = () => new Date().toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
const seconds = () => new Date().toISOString().replace(/\.\d{3}Z$/, "Z");

export class EventRecorder {
  private seen = new Map<string, { name: string; count: number }>();

  constructor(
    private readonly kube: Kube,
    private readonly node: string,
    private readonly log: (msg: string) => void,
  ) {}

  async record(
    pod: InvolvedPod,
    type: "Normal" | "Warning",
    reason: string,
    message: string,
  ): Promise<void> {
    const key = `${pod.uid}\0${reason}\0${message}`;
    const prev = this.seen.get(key);
    const base = `/api/v1/namespaces/${pod.namespace}/events`;
    try {
      if (prev) {
        prev.count++;
        await this.kube.patch(
          `${base}/${prev.name}`,
          { count: prev.count, lastTimestamp: seconds() },
          "merge",
        );
        return;
      }
    } catch {
      /* expired or gone: create a new one */
    }
    const name = `${pod.name}.${randomBytes(8).toString("hex")}`;
    const now = seconds();
    try {
      await this.kube.create(base, {
        apiVersion: "v1",
        kind: "Event",
        metadata: { name, namespace: pod.namespace },
        involvedObject: {
          apiVersion: "v1",
          kind: "Pod",
          namespace: pod.namespace,
          name: pod.name,
          uid: pod.uid,
        },
        reason,
        message,
        type,
        source: { component: "kubelet", host: this.node },
        firstTimestamp: now,
        lastTimestamp: now,
        eventTime: null,
        count: 1,
        reportingComponent: "kubelet",
        reportingInstance: this.node,
      });
      this.seen.set(key, { name, count: 1 });
      if (this.seen.size > 2000) this.seen.delete(this.seen.keys().next().value as string);
    } catch (e) {
      this.log(`event ${reason} for ${pod.namespace}/${pod.name} not recorded: ${String(e)}`);
    }
  }

  forget(uid: string): void {
    for (const k of [...this.seen.keys()]) if (k.startsWith(`${uid}\0`)) this.seen.delete(k);
  }
}

export { micro as microTime, seconds as rfc3339 };
