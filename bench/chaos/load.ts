// The chaos suite's load: pod create/delete cycles across two Deployments and a StatefulSet (the
// suite deletes a Ready pod, its controller makes the next) and fixed-IP pods (created with
// `macvlan.dev/ip`, deleted once Ready, made again), in one opted-in namespace. A cycle is one
// pod that was created, ran and was deleted. Errors are kept with their time, for the fault table.
import type { Kube } from "../../hack/cluster/kube";
import { sleep } from "../../hack/cluster/kube";
import { testDeployment, testPod } from "../../test/integration/helpers/objects";
import { ANN_IP } from "../../lib/names";
import type { ChaosPod } from "./checks";

export const CHAOS_NAMESPACE = "chaos";
const KIND_LABEL = "chaos.macvlan.dev/kind";

export interface LoadOptions {
  /** Replicas of each of the two Deployments. */
  deploymentReplicas: number;
  statefulSetReplicas: number;
  /** Fixed addresses, one worker each (create, wait Ready, delete, again). */
  fixedIps: string[];
  /** At most this many pods of the namespace not Ready before the next delete. */
  maxNotReady: number;
}

export interface LoadError {
  /** ms since the epoch */
  at: number;
  what: string;
  message: string;
}

const podsPath = `/api/v1/namespaces/${CHAOS_NAMESPACE}/pods`;
const isReady = (p: ChaosPod) =>
  !p.metadata?.deletionTimestamp &&
  !!p.status?.conditions?.some(c => c.type === "Ready" && c.status === "True");
const message = (e: unknown) => (e instanceof Error ? e.message : String(e)).slice(0, 300);

/** The workload objects: two Deployments and a StatefulSet (parallel pod management). */
export function workloads(o: LoadOptions): object[] {
  const labelled = (obj: ReturnType<typeof testDeployment>, kind: string) => {
    const labels: Record<string, string> = {
      ...obj.spec.template.metadata.labels,
      [KIND_LABEL]: kind,
    };
    return {
      ...obj,
      spec: { ...obj.spec, template: { ...obj.spec.template, metadata: { labels } } },
    };
  };
  const deploys = ["web-a", "web-b"].map(name =>
    labelled(
      testDeployment({ name, namespace: CHAOS_NAMESPACE, replicas: o.deploymentReplicas }),
      "deployment",
    ),
  );
  const sts = labelled(
    testDeployment({ name: "db", namespace: CHAOS_NAMESPACE, replicas: o.statefulSetReplicas }),
    "statefulset",
  );
  return [
    ...deploys,
    {
      ...sts,
      kind: "StatefulSet",
      spec: { ...sts.spec, serviceName: "db", podManagementPolicy: "Parallel" },
    },
  ];
}

export class Load {
  cycles = 0;
  readonly errors: LoadError[] = [];
  private stopping = false;
  private workers: Promise<void>[] = [];
  private serial = 0;

  constructor(
    private readonly api: Kube,
    private readonly o: LoadOptions,
  ) {}

  start(): void {
    this.workers = [this.controllerCycles(), ...this.o.fixedIps.map((ip, i) => this.fixed(i, ip))];
  }

  /** Stops issuing cycles and waits for the workers (a fixed pod in flight is deleted). */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.workers);
  }

  private fail(what: string, e: unknown): void {
    this.errors.push({ at: Date.now(), what, message: message(e) });
  }

  /** Deletes a Ready Deployment or StatefulSet pod whenever few pods are starting. */
  private async controllerCycles(): Promise<void> {
    while (!this.stopping) {
      try {
        const pods = ((await this.api.get<{ items: ChaosPod[] }>(podsPath)).items ?? []).filter(
          p => p.metadata?.labels?.[KIND_LABEL],
        );
        const notReady = pods.filter(p => !isReady(p)).length;
        const ready = pods.filter(isReady);
        if (notReady >= this.o.maxNotReady || !ready.length) {
          await sleep(500);
          continue;
        }
        const victim = ready[Math.floor(Math.random() * ready.length)];
        await this.api.delete(`${podsPath}/${victim.metadata!.name}`);
        this.cycles++;
      } catch (e) {
        this.fail("delete a controller's pod", e);
        await sleep(1000);
      }
      await sleep(200);
    }
  }

  /** Worker `i`: a pod with fixed address `ip`, created, Ready, deleted, gone, again. */
  private async fixed(i: number, ip: string): Promise<void> {
    while (!this.stopping) {
      const name = `fixed-${i}-${++this.serial}`;
      const pod = testPod({
        name,
        namespace: CHAOS_NAMESPACE,
        annotations: { [ANN_IP]: ip },
        terminationGracePeriodSeconds: 1,
      });
      try {
        await this.api.create(podsPath, pod);
      } catch (e) {
        // A Released lease of the address waits out the reuse delay: "taken" is the product
        // doing its job; anything else is kept for the fault table too.
        this.fail(`create fixed pod ${ip}`, e);
        await sleep(2000);
        continue;
      }
      const ok = await this.until(name, p => !!p && isReady(p), 120_000);
      await this.deleteFixed(name);
      if (ok) this.cycles++;
    }
  }

  private async deleteFixed(name: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.api.delete(`${podsPath}/${name}`);
        break;
      } catch (e) {
        if ((e as { status?: number }).status === 404) break;
        this.fail(`delete fixed pod ${name}`, e);
        if (attempt > 120) return;
        await sleep(1000);
      }
    }
    await this.until(name, p => !p, 180_000);
  }

  /** Polls pod `name` until `pred` holds (true) or the time is up (false). */
  private async until(
    name: string,
    pred: (p: ChaosPod | undefined) => boolean,
    timeoutMs: number,
  ): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      try {
        if (pred(await this.api.getOrUndefined<ChaosPod>(`${podsPath}/${name}`))) return true;
      } catch {
        /* the API server may be restarting: poll again */
      }
      await sleep(500);
    }
    return false;
  }
}
