// The node's own heartbeat, as the kubelet keeps it: a Lease in kube-node-lease renewed every
// 10 s and the Node status (Ready, addresses, capacity, nodeInfo) posted every minute.
import * as fs from "node:fs";
import * as os from "node:os";
import { K8S_VERSION, NodeSpec } from "../config";
import { Kube, isNotFound } from "../kube";
import { microTime, rfc3339 } from "./events";

const LEASE_DURATION_S = 40;
const LEASE_RENEW_MS = 10000;
const STATUS_EVERY_MS = 60000;

export class NodeHeartbeat {
  private timers: NodeJS.Timeout[] = [];
  private readyTransition = rfc3339();
  private nodeUID?: string;

  constructor(
    private readonly kube: Kube,
    private readonly node: NodeSpec,
    private readonly log: (msg: string) => void,
  ) {}

  async start(): Promise<void> {
    await this.postStatus();
    await this.renewLease();
    this.timers.push(setInterval(() => void this.renewLease(), LEASE_RENEW_MS));
    this.timers.push(setInterval(() => void this.postStatus(), STATUS_EVERY_MS));
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
  }

  private nodeInfo() {
    let machineID = "";
    try {
      machineID = fs.readFileSync("/etc/machine-id", "utf8").trim();
    } catch {
      /* none */
    }
    let bootID = "";
    try {
      bootID = fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
    } catch {
      /* none */
    }
    return {
      machineID,
      systemUUID: machineID,
      bootID,
      kernelVersion: os.release(),
      osImage: "pepr-macvlan simulated node (network namespace)",
      containerRuntimeVersion: "pmv-node-runtime://0.1.0",
      kubeletVersion: K8S_VERSION,
      kubeProxyVersion: "",
      operatingSystem: "linux",
      architecture: "amd64",
    };
  }

  async postStatus(): Promise<void> {
    const now = rfc3339();
    const cond = (
      type: string,
      status: string,
      reason: string,
      message: string,
      transition = now,
    ) => ({
      type,
      status,
      reason,
      message,
      lastHeartbeatTime: now,
      lastTransitionTime: transition,
    });
    // 250 pods: a node's /24 of host-local addresses holds 253.
    const resources = { cpu: "16", memory: "32Gi", pods: "250", "ephemeral-storage": "100Gi" };
    try {
      const current = await this.kube.get(`/api/v1/nodes/${this.node.name}`);
      this.nodeUID = current.metadata.uid;
      const prev = (current.status?.conditions ?? []) as Array<{
        type: string;
        status: string;
        lastTransitionTime: string;
      }>;
      const since = (type: string, status: string) => {
        const p = prev.find(c => c.type === type);
        return p && p.status === status ? p.lastTransitionTime : now;
      };
      this.readyTransition = since("Ready", "True");
      await this.kube.patch(
        `/api/v1/nodes/${this.node.name}/status`,
        {
          status: {
            conditions: [
              cond(
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
                since("MemoryPressure", "False"),
              ),
              cond(
                "DiskPressure",
                "False",
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
                since("DiskPressure", "False"),
              ),
              cond(
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
                since("PIDPressure", "False"),
              ),
              cond(
                "Ready",
                "True",
                "KubeletReady",
                "pmv node runtime is posting ready status",
                this.readyTransition,
              ),
            ],
            addresses: [
              { type: "InternalIP", address: this.node.ip },
              { type: "InternalIP", address: this.node.ip6 },
              { type: "Hostname", address: this.node.name },
            ],
            capacity: resources,
            allocatable: resources,
            daemonEndpoints: { kubeletEndpoint: { Port: 0 } },
            nodeInfo: this.nodeInfo(),
          },
        },
        // A merge patch replaces the lists: addresses holds two InternalIPs, which a strategic
        // merge (merge key "type") would duplicate.
        "merge",
      );
    } catch (e) {
      this.log(`node status update failed: ${String(e)}`);
    }
  }

  async renewLease(): Promise<void> {
    const p = `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${this.node.name}`;
    const spec = {
      holderIdentity: this.node.name,
      leaseDurationSeconds: LEASE_DURATION_S,
      renewTime: microTime(),
    };
    try {
      await this.kube.patch(p, { spec }, "merge");
    } catch (e) {
      if (!isNotFound(e)) {
        this.log(`lease renew failed: ${String(e)}`);
        return;
      }
      try {
        await this.kube.create("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", {
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: {
            name: this.node.name,
            namespace: "kube-node-lease",
            ...(this.nodeUID
              ? {
                  ownerReferences: [
                    { apiVersion: "v1", kind: "Node", name: this.node.name, uid: this.nodeUID },
                  ],
                }
              : {}),
          },
          spec,
        });
      } catch (e2) {
        this.log(`lease create failed: ${String(e2)}`);
      }
    }
  }
}
