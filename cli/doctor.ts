// `kubectl macvlan doctor`: checks the cluster the way an operator would, each finding with a
// fix; exits non-zero when something is wrong. Pure over a snapshot plus what the adapter probed
// (CRDs, the webhook's dry-run answer and its latency, the module's and the agents' pods).
// A dual-stack pod is checked for each of its families (a lease and an address on net1 each).
import { PodClaim, leasesOfPod, podId, unleasedClaims } from "../lib/decide/pods";
import { AGENT_LABEL, AGENT_NAMESPACE, NAD_CRD } from "./constants";
import { Check } from "./why";
import { MacvlanLease, Pod, Snapshot, nameOf } from "./snapshot";
import { entryIps, entryServing, hasIp, networkStatusOf } from "./pod-net";
import { summarizeSubnets } from "./subnets";

export interface WebhookProbe {
  /** The MutatingWebhookConfiguration of the module exists. */
  configured: boolean;
  /** A server-side dry-run pod create went through the webhook. */
  ok: boolean;
  ms: number;
  error?: string;
}

export interface DoctorInput extends Snapshot {
  nodes: { name: string; ready: boolean }[];
  crds: string[];
  webhook: WebhookProbe;
  /** The module's pods (admission and watcher) in pepr-system. */
  modulePods: Pod[];
  /** Seconds the webhook may take (package.json pepr.webhookTimeout). */
  webhookTimeoutSeconds?: number;
}

export interface DoctorReport {
  healthy: boolean;
  checks: Check[];
  fixes: string[];
}

const ok = (step: string, detail: string): Check => ({ step, status: "ok", detail });
const bad = (status: "warn" | "fail", step: string, detail: string, fix: string): Check => ({
  step,
  status,
  detail,
  fix,
});

const isReady = (p: Pod) =>
  !!p.status?.conditions?.some(c => c.type === "Ready" && c.status === "True");

export function doctor(s: DoctorInput): DoctorReport {
  const checks = [
    ...crdChecks(s),
    ...webhookChecks(s),
    ...moduleChecks(s),
    ...agentChecks(s),
    ...subnetChecks(s),
    ...multusChecks(s),
  ];
  const fixes = [...new Set(checks.filter(c => c.status !== "ok" && c.fix).map(c => c.fix!))];
  return { healthy: !checks.some(c => c.status === "fail"), checks, fixes };
}

function crdChecks(s: DoctorInput): Check[] {
  const want = [
    [NAD_CRD, "install Multus (its NetworkAttachmentDefinition CRD)"],
    ["macvlansubnets.macvlan.dev", "kubectl apply -f crds/ (or install the Helm chart)"],
    ["macvlanleases.macvlan.dev", "kubectl apply -f crds/ (or install the Helm chart)"],
  ];
  return want.map(([crd, fix]) =>
    s.crds.includes(crd)
      ? ok("crd", `${crd} installed`)
      : bad("fail", "crd", `${crd} missing`, fix),
  );
}

function webhookChecks(s: DoctorInput): Check[] {
  const w = s.webhook;
  if (!w.configured)
    return [
      bad(
        "fail",
        "webhook",
        "the module's MutatingWebhookConfiguration is missing: pods get no address",
        "install the module (npx pepr deploy, or helm install pepr-macvlan <chart>)",
      ),
    ];
  if (!w.ok)
    return [
      bad(
        "fail",
        "webhook",
        `a dry-run pod create failed through the webhook after ${w.ms} ms: ${w.error ?? "?"}`,
        `check the admission pods: kubectl -n pepr-system get pods; kubectl -n pepr-system logs deploy/pepr-pepr-macvlan`,
      ),
    ];
  const limit = (s.webhookTimeoutSeconds ?? 10) * 1000;
  if (w.ms > limit / 2)
    return [
      bad(
        "warn",
        "webhook",
        `reachable, but a dry-run pod create took ${w.ms} ms (the webhook timeout is ${limit / 1000} s)`,
        "give the admission pods more CPU or replicas (helm value admission.replicas)",
      ),
    ];
  return [ok("webhook", `reachable: a dry-run pod create took ${w.ms} ms`)];
}

function moduleChecks(s: DoctorInput): Check[] {
  const watcher = s.modulePods.filter(p => nameOf(p).includes("-watcher"));
  const admission = s.modulePods.filter(p => !nameOf(p).includes("-watcher"));
  const line = (what: string, pods: Pod[], fix: string): Check => {
    const ready = pods.filter(isReady).length;
    if (!pods.length) return bad("fail", "module", `no ${what} pod`, fix);
    if (!ready) return bad("fail", "module", `${what}: 0/${pods.length} Ready`, fix);
    return ok("module", `${what}: ${ready}/${pods.length} Ready`);
  };
  return [
    line("admission", admission, "kubectl -n pepr-system describe deploy/pepr-pepr-macvlan"),
    line(
      "watcher",
      watcher,
      "kubectl -n pepr-system describe deploy/pepr-pepr-macvlan-watcher (leases are neither bound nor released meanwhile)",
    ),
  ];
}

function agentChecks(s: DoctorInput): Check[] {
  const agents = s.pods.filter(
    p =>
      p.metadata?.namespace === AGENT_NAMESPACE &&
      p.metadata?.labels?.["app.kubernetes.io/name"] === AGENT_LABEL,
  );
  return s.nodes.map(n => {
    const pod = agents.find(p => p.spec?.nodeName === n.name);
    if (!pod)
      return bad(
        "fail",
        "agent",
        `node ${n.name}: no agent pod (the node cannot reach its own macvlan pods)`,
        `check the DaemonSet: kubectl -n ${AGENT_NAMESPACE} describe ds/${AGENT_LABEL}`,
      );
    if (!isReady(pod))
      return bad(
        "fail",
        "agent",
        `node ${n.name}: agent ${nameOf(pod)} is ${pod.status?.phase ?? "?"}, not Ready`,
        `kubectl -n ${AGENT_NAMESPACE} logs ${nameOf(pod)}`,
      );
    return ok("agent", `node ${n.name}: agent ${nameOf(pod)} Ready`);
  });
}

function subnetChecks(s: DoctorInput): Check[] {
  const out: Check[] = [];
  for (const sub of summarizeSubnets(s)) {
    const total = BigInt(sub.total);
    const free = BigInt(sub.free);
    if (sub.error)
      out.push(
        bad(
          "fail",
          "subnet",
          `${sub.name}: ${sub.error}`,
          `fix the spec of MacvlanSubnet ${sub.name}`,
        ),
      );
    else if (total > 0n && free === 0n)
      out.push(
        bad(
          "fail",
          "subnet",
          `${sub.name} is exhausted (${sub.allocated}/${sub.total})`,
          `grow spec.ranges of ${sub.name}`,
        ),
      );
    else if (total > 0n && free * 10n < total)
      out.push(
        bad(
          "warn",
          "subnet",
          `${sub.name} is nearly exhausted: ${sub.free} of ${sub.total} free`,
          `grow spec.ranges of ${sub.name} before it runs out`,
        ),
      );
    else out.push(ok("subnet", `${sub.name}: ${sub.free} of ${sub.total} free`));
    for (const c of sub.conflicts)
      out.push(
        bad(
          "fail",
          "conflict",
          `${sub.name}: ${c.detail} (${c.leases.join(", ")})`,
          `inspect with kubectl macvlan who-has ${c.ip.split(",")[0]}`,
        ),
      );
    for (const node of s.nodes) {
      const e = sub.nodes.find(n => n.node === node.name);
      if (!e)
        out.push(
          bad(
            "fail",
            "node",
            `${sub.name} on ${node.name}: no agent report`,
            `check the agent on ${node.name}: kubectl -n ${AGENT_NAMESPACE} get pods -o wide`,
          ),
        );
      else if (!e.ready)
        out.push(
          bad(
            "fail",
            "node",
            `${sub.name} on ${node.name}: ${e.message ?? "not ready"}`,
            `on ${node.name}: ${e.message ?? "see the agent's log"}`,
          ),
        );
      else if (/rp_filter|warn/i.test(e.message ?? ""))
        out.push(
          bad(
            "warn",
            "node",
            `${sub.name} on ${node.name}: ${e.message}`,
            `set AGENT_RP_FILTER=loose on the agent, or rp_filter=2 on ${node.name}`,
          ),
        );
    }
  }
  return out;
}

/**
 * Running pods with Bound leases: each family a pod claims has its lease (a dual-stack pod holds
 * one per family), and Multus reports each leased address on the managed network that carries it
 * (the subnet's NAD, or the dual-stack pair's).
 */
function multusChecks(s: DoctorInput): Check[] {
  const bound = new Map<string, MacvlanLease[]>();
  for (const l of s.leases) {
    const uid = l.spec?.podRef?.uid;
    if (l.status?.phase === "Bound" && uid) bound.set(uid, [...(bound.get(uid) ?? []), l]);
  }
  const missing = new Map<string, string[]>();
  const partial: Check[] = [];
  for (const pod of s.pods) {
    const candidates = bound.get(pod.metadata?.uid ?? "");
    if (!candidates || pod.status?.phase !== "Running") continue;
    const own = leasesOfPod(pod, candidates);
    const lost = unleasedClaims(pod, own);
    if (lost.length) partial.push(lostLease(pod, lost));
    if (own.every(l => attached(pod, l))) continue;
    const node = pod.spec?.nodeName ?? "?";
    missing.set(node, [...(missing.get(node) ?? []), podId(pod)]);
  }
  const interfaces = missing.size
    ? [...missing].map(([node, pods]) =>
        bad(
          "fail",
          "multus",
          `node ${node}: ${pods.length} running pod(s) without a macvlan interface carrying their leased addresses (${pods.slice(0, 3).join(", ")})`,
          `check Multus and the macvlan/static CNI plugins on ${node} (/etc/cni/net.d, /opt/cni/bin); kubectl macvlan why ${pods[0]} shows the details`,
        ),
      )
    : [ok("multus", "every running macvlan pod has its interface and addresses in network-status")];
  return [...partial, ...interfaces];
}

/** Multus reports the lease's address on the managed network of its subnet. */
function attached(pod: Pod, lease: MacvlanLease): boolean {
  const status = networkStatusOf(pod);
  if (status.kind !== "entries") return false;
  const entry = entryServing(status.entries, pod.metadata?.namespace ?? "", lease.spec!.subnet);
  return !!entry && hasIp(entryIps(entry), lease.spec!.ip);
}

function lostLease(pod: Pod, lost: PodClaim[]): Check {
  const id = podId(pod);
  return bad(
    "fail",
    "lease",
    `pod ${id} holds no lease of ${lost.map(c => `${c.subnet} for ${c.ip}`).join(", ")} (a dual-stack pod holds one per family)`,
    `kubectl macvlan why ${id}: the watcher's repair remakes a lost lease when the address is free; if it stays missing, delete the pod so it is admitted again`,
  );
}

export function doctorText(r: DoctorReport): string {
  const mark = { ok: "ok  ", warn: "warn", fail: "FAIL", info: "info" } as const;
  const lines = r.checks.map(c => `[${mark[c.status]}] ${c.step.padEnd(9)} ${c.detail}`);
  if (r.fixes.length) {
    lines.push("", "to fix:");
    r.fixes.forEach((f, i) => lines.push(`  ${i + 1}. ${f}`));
  }
  lines.push("", r.healthy ? "healthy" : "problems found");
  return lines.join("\n") + "\n";
}
