// `kubectl macvlan why <ns>/<pod>`: a pod's macvlan state end to end, each step with what was
// found and, where it is wrong, what to do. Each step uses the product's own rules (lib/selection,
// lib/decide/pods, lib/multus) over a snapshot; nothing here talks to the cluster.
import { leaseOfPod, claimOf, UNADMITTED_NAMESPACES } from "../lib/decide/pods";
import { parseDefaultNetwork, parseNetworks } from "../lib/multus";
import { NamespaceInfo, namespaceAllowed, requestedSubnet } from "../lib/selection";
import {
  ANN_MULTUS_DEFAULT,
  ANN_MULTUS_NETWORKS,
  ANN_NETWORK_STATUS,
  ANN_SINGLE_NIC,
  LABEL_SUBNET,
  nadName,
} from "../lib/names";
import { leaseName } from "../lib/ipam";
import {
  KubeEvent,
  MacvlanLease,
  MacvlanSubnet,
  Pod,
  Snapshot,
  eventTime,
  nameOf,
} from "./snapshot";
import { AGENT_LABEL, AGENT_NAMESPACE } from "./constants";

export type CheckStatus = "ok" | "warn" | "fail" | "info";

export interface Check {
  step: string;
  status: CheckStatus;
  detail: string;
  fix?: string;
}

export interface Explanation {
  pod: string;
  /** Everything needed is in place (only ok/info steps). */
  healthy: boolean;
  /** The pod does not use macvlan (not opted in): nothing is wrong. */
  optedOut?: boolean;
  checks: Check[];
  /** The first fix to apply. */
  todo?: string;
  events: { type: string; reason: string; message: string; at: string; object: string }[];
}

export interface WhyInput extends Snapshot {
  namespace: string;
  name: string;
}

const ok = (step: string, detail: string): Check => ({ step, status: "ok", detail });
const fail = (step: string, detail: string, fix: string): Check => ({
  step,
  status: "fail",
  detail,
  fix,
});
const warn = (step: string, detail: string, fix?: string): Check => ({
  step,
  status: "warn",
  detail,
  fix,
});

export function explainPod(s: WhyInput): Explanation {
  const id = `${s.namespace}/${s.name}`;
  const pod = s.pods.find(p => p.metadata?.namespace === s.namespace && nameOf(p) === s.name);
  const checks: Check[] = [];
  const done = (extra: Partial<Explanation> = {}): Explanation => {
    const firstFix = checks.find(c => c.status === "fail" && c.fix) ?? checks.find(c => c.fix);
    return {
      pod: id,
      healthy: checks.every(c => c.status === "ok" || c.status === "info"),
      checks,
      todo: firstFix?.fix,
      events: recentEvents(s, pod),
      ...extra,
    };
  };
  if (!pod) {
    const denials = denialEvents(s.events, s.namespace);
    checks.push(
      fail(
        "pod",
        `pod ${id} does not exist` +
          (denials.length
            ? `; admission refused ${denials.length} pod(s) in ${s.namespace} lately`
            : ""),
        denials.length
          ? `read the refusal below and fix what it names, then let the controller retry`
          : `check the name (kubectl get pods -n ${s.namespace})`,
      ),
    );
    return done();
  }
  checks.push(podState(pod));
  const ns = s.namespaces.find(n => nameOf(n) === s.namespace);
  if (!ns) {
    checks.push(fail("namespace", `namespace ${s.namespace} not found`, "recreate the namespace"));
    return done();
  }
  const info: NamespaceInfo = { name: s.namespace, labels: ns.metadata?.labels ?? {} };
  const subnetName = requestedSubnet(pod.metadata?.annotations, info);
  if (!subnetName) {
    checks.push({
      step: "opt-in",
      status: "info",
      detail: `namespace ${s.namespace} has no ${LABEL_SUBNET} label and the pod no ${LABEL_SUBNET} annotation: the pod does not use macvlan`,
      fix: `kubectl label namespace ${s.namespace} ${LABEL_SUBNET}=<subnet>, then recreate the pod`,
    });
    return done({ optedOut: true });
  }
  if (UNADMITTED_NAMESPACES.includes(s.namespace)) {
    checks.push(
      fail(
        "opt-in",
        `namespace ${s.namespace} is one the module's webhooks never see (pepr.alwaysIgnore)`,
        "run macvlan pods in another namespace",
      ),
    );
    return done();
  }
  const fromPod = !!pod.metadata?.annotations?.[LABEL_SUBNET];
  checks.push(
    ok(
      "opt-in",
      `asks for subnet ${subnetName} (${fromPod ? "pod annotation" : `namespace label ${LABEL_SUBNET}`})`,
    ),
  );
  const subnet = s.subnets.find(x => nameOf(x) === subnetName);
  const subnetCheck = checkSubnet(subnet, subnetName, info);
  checks.push(...subnetCheck);
  if (!subnet) return done();
  const lease = leaseOfPod(pod, leasesOf(s.leases, subnetName), info);
  checks.push(checkLease(pod, lease, subnetName, s.leases));
  if (!lease) return done();
  checks.push(checkSelection(pod, lease, subnet));
  checks.push(checkNetworkStatus(pod, lease, subnetName));
  checks.push(checkAgent(pod, subnet, s.pods, lease));
  return done();
}

const leasesOf = (leases: MacvlanLease[], subnet: string) =>
  leases.filter(l => l.spec?.subnet === subnet);

function podState(pod: Pod): Check {
  const phase = pod.status?.phase ?? "Unknown";
  const ready = pod.status?.conditions?.some(c => c.type === "Ready" && c.status === "True");
  const where = pod.spec?.nodeName ? `on node ${pod.spec.nodeName}` : "not scheduled yet";
  if (pod.metadata?.deletionTimestamp) return warn("pod", `${phase}, being deleted, ${where}`);
  if (phase === "Running" && ready) return ok("pod", `Running and Ready ${where}`);
  return warn(
    "pod",
    `${phase}${ready === false || !ready ? ", not Ready" : ""}, ${where}`,
    phase === "Pending"
      ? `kubectl describe pod -n ${pod.metadata?.namespace} ${pod.metadata?.name} (sandbox and CNI errors show in its Events)`
      : undefined,
  );
}

function checkSubnet(subnet: MacvlanSubnet | undefined, name: string, ns: NamespaceInfo): Check[] {
  if (!subnet)
    return [
      fail(
        "subnet",
        `MacvlanSubnet ${name} does not exist`,
        `create it (kubectl get mvs lists them) or fix the ${LABEL_SUBNET} label/annotation`,
      ),
    ];
  const out: Check[] = [];
  const ready = subnet.status?.conditions?.find(c => c.type === "Ready");
  if (subnet.metadata?.deletionTimestamp)
    out.push(
      fail(
        "subnet",
        `MacvlanSubnet ${name} is being deleted`,
        "move the workload to another subnet",
      ),
    );
  else if (ready?.status === "False")
    out.push(
      fail(
        "subnet",
        `MacvlanSubnet ${name} is not Ready: ${ready.reason}: ${ready.message}`,
        ready.reason === "Exhausted"
          ? `grow spec.ranges of ${name} or delete pods that no longer need an address (kubectl macvlan leases --subnet ${name})`
          : `fix the subnet's spec (kubectl describe mvs ${name})`,
      ),
    );
  else
    out.push(
      ok(
        "subnet",
        `MacvlanSubnet ${name} ${subnet.spec?.cidr ?? ""} ${ready?.message ?? ""}`.trim(),
      ),
    );
  if (!namespaceAllowed(subnet, ns))
    out.push(
      fail(
        "allow-list",
        `namespace ${ns.name} is not in spec.namespaces nor matched by spec.namespaceSelector of ${name}`,
        `add ${ns.name} to spec.namespaces of MacvlanSubnet ${name} (or label the namespace to match its namespaceSelector)`,
      ),
    );
  else out.push(ok("allow-list", `namespace ${ns.name} may use ${name}`));
  return out;
}

function checkLease(
  pod: Pod,
  lease: MacvlanLease | undefined,
  subnet: string,
  all: MacvlanLease[],
): Check {
  const podName = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
  if (!lease) {
    const claim = claimOf(pod);
    let holder = "";
    if (claim) {
      const name = safeLeaseName(claim.subnet, claim.ip);
      const other = all.find(l => nameOf(l) === name);
      const ref = other?.spec?.podRef;
      holder = other
        ? `; lease ${name} exists but belongs to ${ref ? `${ref.namespace}/${ref.name ?? "?"}` : "no pod"}`
        : `; the pod's annotations claim ${claim.ip} but no lease ${name} exists`;
    }
    return fail(
      "lease",
      `no MacvlanLease of ${subnet} belongs to pod ${podName}${holder || " (admission did not run for it: created before the namespace opted in, or the webhook was skipped)"}`,
      `delete the pod so its controller recreates it through admission (kubectl delete pod -n ${pod.metadata?.namespace} ${pod.metadata?.name})`,
    );
  }
  const phase = lease.status?.phase ?? "Reserved";
  const desc = `lease ${nameOf(lease)}: ${lease.spec?.ip} ${lease.spec?.mac}, ${phase}`;
  if (phase === "Bound") {
    if (lease.spec?.node && pod.spec?.nodeName && lease.spec.node !== pod.spec.nodeName)
      return warn(
        "lease",
        `${desc} on node ${lease.spec.node}, but the pod runs on ${pod.spec.nodeName}`,
        "the watcher corrects the node within a resync (60 s); if it stays, check the watcher's log",
      );
    return ok("lease", `${desc} on node ${lease.spec?.node ?? "?"}`);
  }
  if (phase === "Released")
    return fail(
      "lease",
      `${desc}: the address was given up while the pod lives`,
      "delete the pod so it is admitted again with a new lease",
    );
  return warn(
    "lease",
    `${desc}: not bound yet (the watcher binds it once the pod is scheduled)`,
    pod.spec?.nodeName
      ? "if it stays Reserved for more than a minute, look at the watcher: kubectl -n pepr-system logs deploy/pepr-pepr-macvlan-watcher"
      : undefined,
  );
}

function safeLeaseName(subnet: string, ip: string): string {
  try {
    return leaseName(subnet, ip);
  } catch {
    return "";
  }
}

const ipOnly = (cidr: string) => cidr.split("/")[0];

function checkSelection(pod: Pod, lease: MacvlanLease, subnet: MacvlanSubnet): Check {
  const ns = pod.metadata?.namespace ?? "";
  const ann = pod.metadata?.annotations ?? {};
  const single = ann[ANN_SINGLE_NIC] === "true";
  const which = single ? ANN_MULTUS_DEFAULT : ANN_MULTUS_NETWORKS;
  const parsed = single ? parseDefaultNetwork(ann[which]) : parseNetworks(ann[which], ns);
  if (!parsed.ok)
    return fail(
      "multus",
      `${which} cannot be read: ${parsed.error}`,
      "delete the pod so admission writes the selection again",
    );
  const nad = nadName(nameOf(subnet));
  const sel = parsed.selections.find(x => x.name === nad && x.namespace === ns);
  if (!sel)
    return fail(
      "multus",
      `${which} does not select ${ns}/${nad}`,
      "delete the pod so admission writes the selection again",
    );
  const ips = (sel.ips ?? []).map(ipOnly);
  if (!ips.includes(lease.spec!.ip))
    return fail(
      "multus",
      `the selection of ${nad} asks for ${ips.join(",") || "no IP"}, the lease holds ${lease.spec!.ip}`,
      "delete the pod so it is admitted again",
    );
  return ok(
    "multus",
    `${which} selects ${ns}/${nad} as ${sel.interface ?? (single ? "eth0 (only NIC)" : "net1")} with ${lease.spec!.ip}`,
  );
}

interface StatusEntry {
  name?: string;
  interface?: string;
  ips?: string[];
  mac?: string;
}

function checkNetworkStatus(pod: Pod, lease: MacvlanLease, subnet: string): Check {
  const raw = pod.metadata?.annotations?.[ANN_NETWORK_STATUS];
  const ns = pod.metadata?.namespace;
  const node = pod.spec?.nodeName ?? "its node";
  if (!raw)
    return (pod.status?.phase === "Running" ? fail : warn)(
      "network-status",
      `no ${ANN_NETWORK_STATUS} annotation: Multus has not attached the pod's networks (yet)`,
      `check Multus and the macvlan/static CNI plugins on ${node} (kubectl describe pod -n ${ns} ${pod.metadata?.name}: FailedCreatePodSandBox)`,
    );
  let entries: StatusEntry[] = [];
  try {
    entries = JSON.parse(raw) as StatusEntry[];
  } catch {
    return fail("network-status", `${ANN_NETWORK_STATUS} is not JSON`, "check Multus on the node");
  }
  const want = `${ns}/${nadName(subnet)}`;
  const entry = Array.isArray(entries) ? entries.find(e => e?.name === want) : undefined;
  if (!entry)
    return fail(
      "network-status",
      `Multus reports no interface from ${want}`,
      `check Multus on ${node}: it ran without the pod's selection`,
    );
  if (!(entry.ips ?? []).includes(lease.spec!.ip))
    return fail(
      "network-status",
      `Multus attached ${entry.interface} with ${(entry.ips ?? []).join(",")}, not the leased ${lease.spec!.ip}`,
      "delete the pod: its interface and its lease disagree",
    );
  return ok(
    "network-status",
    `Multus attached ${entry.interface} ${lease.spec!.ip} ${entry.mac ?? ""}`.trim(),
  );
}

function checkAgent(pod: Pod, subnet: MacvlanSubnet, pods: Pod[], lease: MacvlanLease): Check {
  const node = pod.spec?.nodeName;
  if (!node) return warn("agent", "the pod is not scheduled: no node to check");
  const agent = pods.find(
    p =>
      p.metadata?.namespace === AGENT_NAMESPACE &&
      p.metadata?.labels?.["app.kubernetes.io/name"] === AGENT_LABEL &&
      p.spec?.nodeName === node,
  );
  const entry = subnet.status?.nodes?.find(n => n.node === node);
  const agentReady = agent?.status?.conditions?.some(
    c => c.type === "Ready" && c.status === "True",
  );
  const podState = agent ? (agentReady ? "Ready" : `${agent.status?.phase}, not Ready`) : "none";
  if (!entry)
    return fail(
      "agent",
      `no agent has reported ${nameOf(subnet)} for node ${node} (agent pod: ${podState})`,
      `check the agent DaemonSet on ${node}: kubectl -n ${AGENT_NAMESPACE} get pods -l app.kubernetes.io/name=${AGENT_LABEL} -o wide`,
    );
  if (!entry.ready)
    return fail(
      "agent",
      `agent on ${node} reports ${nameOf(subnet)} not ready: ${entry.message ?? ""}`,
      `fix what the agent says (its log: kubectl -n ${AGENT_NAMESPACE} logs ${agent ? nameOf(agent) : `ds/${AGENT_LABEL}`}); the node cannot reach its macvlan pods meanwhile`,
    );
  return ok(
    "agent",
    `agent on ${node} (${podState}): ${entry.message ?? "ready"}; it routes ${lease.spec!.ip} via shim ${entry.shim ?? "?"}`,
  );
}

function recentEvents(s: WhyInput, pod: Pod | undefined) {
  const uid = pod?.metadata?.uid;
  return s.events
    .filter(
      e =>
        e.involvedObject?.namespace === s.namespace &&
        ((e.involvedObject?.kind === "Pod" &&
          e.involvedObject?.name === s.name &&
          (!uid || !e.involvedObject?.uid || e.involvedObject.uid === uid)) ||
          (!pod && isDenial(e))),
    )
    .sort((a, b) => eventTime(b).localeCompare(eventTime(a)))
    .slice(0, 8)
    .map(e => ({
      type: e.type ?? "",
      reason: e.reason ?? "",
      message: (e.message ?? "").slice(0, 300),
      at: eventTime(e),
      object: `${e.involvedObject?.kind}/${e.involvedObject?.name}`,
    }));
}

/** A controller's FailedCreate caused by pepr-macvlan's admission. */
export const isDenial = (e: KubeEvent) =>
  e.reason === "FailedCreate" && /pepr-macvlan|macvlan\.dev/.test(e.message ?? "");

const denialEvents = (events: KubeEvent[], ns: string) =>
  events.filter(e => e.involvedObject?.namespace === ns && isDenial(e));

const MARK: Record<CheckStatus, string> = { ok: "ok  ", warn: "warn", fail: "FAIL", info: "info" };

export function explanationText(x: Explanation): string {
  const lines = [`pod ${x.pod}`];
  for (const c of x.checks) lines.push(`  [${MARK[c.status]}] ${c.step.padEnd(14)} ${c.detail}`);
  if (x.events.length) {
    lines.push("  recent events:");
    for (const e of x.events)
      lines.push(`    ${e.at}  ${e.type} ${e.reason} ${e.object}: ${e.message}`);
  }
  lines.push(
    x.optedOut
      ? `=> not a macvlan pod. To give it net1: ${x.todo}`
      : x.healthy
        ? "=> everything is in place"
        : `=> what to do: ${x.todo ?? "see the steps above"}`,
  );
  return lines.join("\n") + "\n";
}
