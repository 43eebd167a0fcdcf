// The plugin's one adapter to the cluster: kubectl's JSON. As a kubectl plugin it runs where
// kubectl runs, with the user's kubeconfig, context and credentials, and starts no client library
// of its own (startup stays fast). Reads run in parallel; a kind the server does not know reads as
// empty (the CRD check in doctor says so).
import { spawn } from "node:child_process";
import { Write } from "../lib/decide/writes";
import { AGENT_LABEL, AGENT_NAMESPACE, MODULE_NAMESPACE, WEBHOOK_NAME } from "./constants";
import { WebhookProbe } from "./doctor";
import { KubeEvent, MacvlanLease, MacvlanSubnet, Namespace, Pod } from "./snapshot";

export interface KubectlOptions {
  context?: string;
  kubeconfig?: string;
  /** The kubectl binary; default $KUBECTL or kubectl on PATH. */
  bin?: string;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class KubectlError extends Error {}

export class Kubectl {
  constructor(private readonly o: KubectlOptions = {}) {}

  private args(args: string[]): string[] {
    const g: string[] = [];
    if (this.o.context) g.push(`--context=${this.o.context}`);
    if (this.o.kubeconfig) g.push(`--kubeconfig=${this.o.kubeconfig}`);
    return [...g, ...args];
  }

  run(args: string[], input?: string): Promise<RunResult> {
    const bin = this.o.bin ?? process.env.KUBECTL ?? "kubectl";
    return new Promise((resolve, reject) => {
      const child = spawn(bin, this.args(args), { stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", d => (stdout += d));
      child.stderr.on("data", d => (stderr += d));
      child.on("error", e => reject(new KubectlError(`cannot run ${bin}: ${e.message}`)));
      child.on("close", code => resolve({ code: code ?? 1, stdout, stderr }));
      child.stdin.end(input ?? "");
    });
  }

  /** `kubectl get … -o json` items; [] when the kind is unknown to the server. */
  async list<T>(args: string[]): Promise<T[]> {
    const r = await this.run(["get", ...args, "-o", "json"]);
    if (r.code !== 0) {
      if (/doesn't have a resource type|NotFound|not found/i.test(r.stderr)) return [];
      throw new KubectlError(`kubectl get ${args.join(" ")}: ${r.stderr.trim()}`);
    }
    const parsed = JSON.parse(r.stdout) as { items?: T[]; kind?: string };
    return parsed.items ?? (parsed.kind && !parsed.kind.endsWith("List") ? [parsed as T] : []);
  }

  subnets = () => this.list<MacvlanSubnet>(["macvlansubnets.macvlan.dev"]);
  leases = (selector?: string) =>
    this.list<MacvlanLease>(["macvlanleases.macvlan.dev", ...(selector ? ["-l", selector] : [])]);
  pods = (namespace?: string) =>
    this.list<Pod>(["pods", ...(namespace ? ["-n", namespace] : ["-A"])]);
  pod = async (namespace: string, name: string) =>
    (
      await this.list<Pod>(["pods", "-n", namespace, "--field-selector", `metadata.name=${name}`])
    )[0];
  namespaces = () => this.list<Namespace>(["namespaces"]);
  events = (namespace: string) => this.list<KubeEvent>(["events", "-n", namespace]);
  agentPods = () =>
    this.list<Pod>(["pods", "-n", AGENT_NAMESPACE, "-l", `app.kubernetes.io/name=${AGENT_LABEL}`]);
  modulePods = async () =>
    (await this.list<Pod>(["pods", "-n", MODULE_NAMESPACE])).filter(p =>
      (p.metadata?.name ?? "").startsWith("pepr-pepr-macvlan"),
    );
  crds = async () =>
    (await this.list<{ metadata?: { name?: string } }>(["customresourcedefinitions"])).map(
      c => c.metadata?.name ?? "",
    );
  nodes = async () =>
    (
      await this.list<{
        metadata?: { name?: string };
        status?: { conditions?: { type: string; status: string }[] };
      }>(["nodes"])
    ).map(n => ({
      name: n.metadata?.name ?? "",
      ready: !!n.status?.conditions?.some(c => c.type === "Ready" && c.status === "True"),
    }));

  /** A server-side dry-run pod create in `namespace`: it goes through the module's webhooks. */
  async probeWebhook(namespace = "default"): Promise<WebhookProbe> {
    const configured =
      (await this.run(["get", "mutatingwebhookconfiguration", WEBHOOK_NAME, "-o", "name"])).code ===
      0;
    const pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { generateName: "macvlan-doctor-", namespace },
      spec: { containers: [{ name: "probe", image: "registry.k8s.io/pause:3.10.1" }] },
    };
    const t0 = performance.now();
    const r = await this.run(
      ["create", "--dry-run=server", "-o", "name", "-f", "-"],
      JSON.stringify(pod),
    );
    const ms = Math.round(performance.now() - t0);
    return { configured, ok: r.code === 0, ms, error: r.code ? r.stderr.trim() : undefined };
  }

  /** Carries out a release's writes (lib/decide/writes.ts), each with its precondition. */
  async apply(writes: Write[]): Promise<void> {
    for (const w of writes) {
      if (w.op === "setLeaseStatus") {
        const patch = [
          ...(w.lease.resourceVersion
            ? [{ op: "test", path: "/metadata/resourceVersion", value: w.lease.resourceVersion }]
            : []),
          ...(w.lease.uid ? [{ op: "test", path: "/metadata/uid", value: w.lease.uid }] : []),
          { op: "add", path: "/status", value: w.status },
        ];
        const r = await this.run([
          "patch",
          "macvlanleases.macvlan.dev",
          w.lease.name,
          "--subresource=status",
          "--type=json",
          "-p",
          JSON.stringify(patch),
        ]);
        if (r.code !== 0)
          throw new KubectlError(
            `lease ${w.lease.name} changed since it was read, or the write was refused: ${r.stderr.trim()}`,
          );
      } else if (w.op === "event") {
        const now = new Date().toISOString();
        const namespace = w.target.namespace ?? "default";
        const event = {
          apiVersion: "v1",
          kind: "Event",
          metadata: { generateName: `${w.target.name}.`, namespace },
          involvedObject: w.target,
          type: w.type,
          reason: w.reason,
          message: w.message,
          source: { component: "kubectl-macvlan" },
          reportingComponent: "kubectl-macvlan",
          reportingInstance: process.env.USER ?? "kubectl-macvlan",
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        };
        const r = await this.run(["create", "-f", "-", "-o", "name"], JSON.stringify(event));
        if (r.code !== 0) throw new KubectlError(`event not recorded: ${r.stderr.trim()}`);
      } else throw new KubectlError(`the plugin does not carry out ${w.op}`);
    }
  }
}
