// The faults the chaos suite injects, one after another, each with how to tell the faulted part is
// back. Processes are found as hack/cluster runs them: pods' containers by their cgroup
// (podProcesses), the control plane by its records (restartControlPlane), a node's LAN cable as
// its veth port on the bridge (setNodeLanLink).
import { restartControlPlane } from "../../hack/cluster/controlplane";
import type { NodeSpec } from "../../hack/cluster/config";
import type { Kube } from "../../hack/cluster/kube";
import { sleep } from "../../hack/cluster/kube";
import { setNodeLanLink } from "../../hack/cluster/network";
import { podProcesses } from "../../hack/cluster/proc";
import { AGENT, NAMESPACE, waitForAgent, waitForModule } from "../../hack/module/deploy";
import { testPod } from "../../test/integration/helpers/objects";
import { PodState, shortError } from "./checks";
import { podStates } from "./cluster";
import { CHAOS_NAMESPACE } from "./load";

export const FAULTS = [
  "kill -9 an admission replica mid-request",
  "kill -9 the watcher",
  "kill -9 an agent",
  "restart kube-apiserver",
  "restart etcd",
  "cut a node's LAN link for 30 s",
] as const;
export type FaultName = (typeof FAULTS)[number];

export interface FaultContext {
  api: Kube;
  nodes: NodeSpec[];
  /** How long the LAN link stays cut (30 s in the suite). */
  linkCutSeconds: number;
}

export interface Fault {
  /** Injects the fault; resolves to what was done and seen. */
  inject(ctx: FaultContext): Promise<string>;
  /** Resolves once the faulted part is back (throws when it is not, in time). */
  back(ctx: FaultContext): Promise<void>;
}

/** kill -9 every container process of one pod (the kubelet restarts the container). */
async function killPod(api: Kube, selector: string, pick: (p: PodState[]) => PodState) {
  const pod = pick(await podStates(api, NAMESPACE, selector));
  if (!pod) throw new Error(`no pod ${selector} in ${NAMESPACE} to kill`);
  const pids = podProcesses(pod.uid);
  if (!pids.length)
    throw new Error(`pod ${pod.name} has no container process (cgroup pod${pod.uid}) to kill`);
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* already gone */
    }
  }
  return { pod, pids };
}

const first = (p: PodState[]) => p[0];
const moduleBack = async () => void (await waitForModule(240_000));

/** Pod creates in flight through the webhook while a replica dies: how each one ended. */
async function killAdmissionMidRequest(ctx: FaultContext): Promise<string> {
  const path = `/api/v1/namespaces/${CHAOS_NAMESPACE}/pods`;
  const names = [0, 1, 2, 3].map(i => `inflight-${Date.now().toString(36)}-${i}`);
  const creates = names.map(name =>
    ctx.api.create(path, testPod({ name, namespace: CHAOS_NAMESPACE })).then(
      () => "created",
      (e: unknown) => shortError(e instanceof Error ? e.message : String(e)).slice(0, 200),
    ),
  );
  await sleep(40);
  const { pod, pids } = await killPod(ctx.api, "pepr.dev/controller=admission", first);
  const outcomes = await Promise.all(creates);
  for (const name of names) await ctx.api.delete(`${path}/${name}`).catch(() => undefined);
  const ok = outcomes.filter(o => o === "created").length;
  const failed = [...new Set(outcomes.filter(o => o !== "created"))];
  return (
    `killed ${pod.name} (${pids.length} processes) with 4 pod creates in flight: ${ok} admitted` +
    (failed.length ? `, refused: ${failed.join("; ")}` : "")
  );
}

export const FAULT_IMPL: Record<FaultName, Fault> = {
  "kill -9 an admission replica mid-request": {
    inject: killAdmissionMidRequest,
    back: moduleBack,
  },
  "kill -9 the watcher": {
    inject: async ctx => {
      const { pod, pids } = await killPod(ctx.api, "pepr.dev/controller=watcher", first);
      return `killed ${pod.name} (${pids.length} processes)`;
    },
    back: moduleBack,
  },
  "kill -9 an agent": {
    inject: async ctx => {
      const { pod, pids } = await killPod(
        ctx.api,
        `app.kubernetes.io/name=${AGENT}`,
        p => p.find(x => x.node === ctx.nodes[0].name) ?? p[0],
      );
      return `killed ${pod.name} on ${pod.node} (${pids.length} processes)`;
    },
    back: async () => void (await waitForAgent(240_000)),
  },
  "restart kube-apiserver": {
    inject: async () =>
      `kube-apiserver down ${(await restartControlPlane("kube-apiserver")).toFixed(1)} s`,
    back: moduleBack,
  },
  "restart etcd": {
    inject: async () => `etcd down ${(await restartControlPlane("etcd")).toFixed(1)} s`,
    back: moduleBack,
  },
  "cut a node's LAN link for 30 s": {
    inject: async ctx => {
      const node = ctx.nodes[ctx.nodes.length - 1];
      setNodeLanLink(node, false);
      try {
        await sleep(ctx.linkCutSeconds * 1000);
      } finally {
        setNodeLanLink(node, true);
      }
      return `${node.name}'s LAN port down ${ctx.linkCutSeconds} s`;
    },
    back: async () => {
      await waitForAgent(240_000);
      await waitForModule(240_000);
    },
  },
};

/** Restart counts and pod names of the module and the agents, for "what the product did". */
export async function componentStates(api: Kube): Promise<PodState[]> {
  return podStates(api, NAMESPACE, "");
}
