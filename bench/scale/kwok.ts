// kwok (hack/build-kwok.sh) as a host process against the local cluster: it plays kubelet for the
// fake Nodes bench:scale creates (annotation kwok.x-k8s.io/node=fake, tainted so that only the
// bench's pods, which tolerate the taint, land there) and marks their pods Running with an address
// from 198.19.64.0/18 (inside the cluster's pod range, unused by the real nodes' /24s). The module
// keeps running on the real kubelet nodes; kube-proxy's DaemonSet, which tolerates every taint, is
// kept off the fake nodes.
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT, paths } from "../../hack/cluster/config";
import { Cluster, waitFor } from "../../test/integration/helpers";
import { log } from "../harness";
import { inBatches } from "./objects";

export const KWOK_LABEL = { key: "type", value: "kwok" };
export const KWOK_TAINT = { key: "kwok.x-k8s.io/node", value: "fake", effect: "NoSchedule" };
const POD_CIDR = "198.19.64.0/18";
const NODE_IP = "198.18.0.9";

export const fakeNodeName = (i: number) => `kwok-node-${i}`;

function fakeNode(i: number) {
  const name = fakeNodeName(i);
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name,
      annotations: { "kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0" },
      labels: {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        [KWOK_LABEL.key]: KWOK_LABEL.value,
      },
    },
    spec: { taints: [KWOK_TAINT] },
    status: {
      allocatable: { cpu: "32", memory: "256Gi", pods: "110" },
      capacity: { cpu: "32", memory: "256Gi", pods: "110" },
    },
  };
}

export class Kwok {
  private child?: ChildProcess;

  /** Starts kwok, logging to .cluster/logs/kwok.log. */
  start(): void {
    const script = path.join(REPO_ROOT, "hack", "build-kwok.sh");
    const bin = execFileSync("bash", [script, "--print-path"], { encoding: "utf8" }).trim();
    const stages = execFileSync("bash", [script, "--print-stages"], { encoding: "utf8" }).trim();
    const configs = fs.readdirSync(stages).map(f => `--config=${path.join(stages, f)}`);
    fs.mkdirSync(paths.logs, { recursive: true });
    const out = fs.openSync(path.join(paths.logs, "kwok.log"), "a");
    this.child = spawn(
      bin,
      [
        `--kubeconfig=${paths.kubeconfig}`,
        ...configs,
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        "--node-lease-duration-seconds=40",
        "--v=WARN",
        `--cidr=${POD_CIDR}`,
        `--node-ip=${NODE_IP}`,
      ],
      { stdio: ["ignore", out, out] },
    );
    log(
      `kwok started (pid ${this.child.pid}, log ${path.relative(REPO_ROOT, paths.logs)}/kwok.log)`,
    );
  }

  /** Stops the kwok process this object started. */
  stop(): void {
    if (this.child && this.child.exitCode === null) this.child.kill("SIGTERM");
  }
}

/** kube-proxy's DaemonSet tolerates everything: keep it on the real nodes. */
async function keepKubeProxyOff(c: Cluster): Promise<void> {
  const affinity = {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [
          {
            matchExpressions: [
              { key: KWOK_LABEL.key, operator: "NotIn", values: [KWOK_LABEL.value] },
            ],
          },
        ],
      },
    },
  };
  await c.kubectl([
    "-n",
    "kube-system",
    "patch",
    "daemonset",
    "kube-proxy",
    "-p",
    JSON.stringify({ spec: { template: { spec: { affinity } } } }),
  ]);
}

/** Creates the fake Nodes and waits until kwok reports them all Ready. */
export async function createFakeNodes(c: Cluster, count: number): Promise<number> {
  const t0 = Date.now();
  await keepKubeProxyOff(c);
  const indices = Array.from({ length: count }, (_, i) => i + 1);
  await inBatches(indices, 16, async i => {
    await c.api.create("/api/v1/nodes", fakeNode(i));
  });
  await waitFor(
    async () => {
      const nodes = (
        await c.api.get("/api/v1/nodes", { labelSelector: `${KWOK_LABEL.key}=${KWOK_LABEL.value}` })
      ).items as { status?: { conditions?: { type: string; status: string }[] } }[];
      const ready = nodes.filter(n =>
        n.status?.conditions?.some(x => x.type === "Ready" && x.status === "True"),
      ).length;
      return ready >= count;
    },
    { what: `${count} kwok nodes Ready`, timeoutMs: 600_000, intervalMs: 2000 },
  );
  return (Date.now() - t0) / 1000;
}
