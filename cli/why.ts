// `kubectl macvlan why <ns>/<pod>`: a pod's macvlan state end to end, each step with what was
// found and, where it is wrong, what to do. Each step uses the product's own rules (lib/selection,
// lib/decide/pods, lib/multus, the agent's address resolution) over a snapshot; nothing here talks
// to the cluster. A dual-stack pod (`macvlan.dev/subnet: lan,lan6`) is explained family by family:
// both subnets, both leases, the pair's NAD with both addresses on net1, a route for each.
import { PodClaim, UNADMITTED_NAMESPACES, claimsOf, leasesOfPod } from "../lib/decide/pods";
import { dualPairProblem } from "../lib/decide/admit";
import { parseDefaultNetwork, parseNetworks } from "../lib/multus";
import { NamespaceInfo, namespaceAllowed, requestedSubnets } from "../lib/selection";
import {
  ANN_MAC,
  ANN_MULTUS_DEFAULT,
  ANN_MULTUS_NETWORKS,
  ANN_NETWORK_STATUS,
  ANN_SINGLE_NIC,
  LABEL_SUBNET,
  LABEL_SUBNET_DUAL,
} from "../lib/names";
import { managedNadName } from "../lib/render/nad";
import { leaseName } from "../lib/ipam";
import { PodResolution, resolvePodAddresses } from "../agent/pods";
import {
  KubeEvent,
  MacvlanLease,
  MacvlanSubnet,
  Pod,
  Snapshot,
  eventTime,
  nameOf,
} from "./snapshot";
import { entryIps, familyOf, hasIp, ipOnly, networkStatusOf } from "./pod-net";
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

const WATCHER_LOG = "kubectl -n pepr-system logs deploy/pepr-pepr-macvlan-watcher";

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
    checks.push(missingPod(s, id));
    return done();
  }
  checks.push(podState(pod));
  const ns = s.namespaces.find(n => nameOf(n) === s.namespace);
  if (!ns) {
    checks.push(fail("namespace", `namespace ${s.namespace} not found`, "recreate the namespace"));
    return done();
  }
  const info: NamespaceInfo = { name: s.namespace, labels: ns.metadata?.labels ?? {} };
  const names = requestedSubnets(pod.metadata?.annotations, info);
  if (!names.length) {
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
  checks.push(...explainFamilies(s, pod, info, names));
  return done();
}

function missingPod(s: WhyInput, id: string): Check {
  const denials = denialEvents(s.events, s.namespace);
  return fail(
    "pod",
    `pod ${id} does not exist` +
      (denials.length
        ? `; admission refused ${denials.length} pod(s) in ${s.namespace} lately`
        : ""),
    denials.length
      ? `read the refusal below and fix what it names, then let the controller retry`
      : `check the name (kubectl get pods -n ${s.namespace})`,
  );
}

/** One subnet the pod asks for: its name, how the steps name it, and what the pod claims in it. */
interface Family {
  name: string;
  /** The subnet's name, with its family for a dual-stack pod: "lan6 (IPv6)". */
  tag: string;
  subnet: MacvlanSubnet;
  claim?: PodClaim;
}

/** The steps after opt-in: each subnet, each lease, then Multus and the agent for all of them. */
function explainFamilies(s: WhyInput, pod: Pod, info: NamespaceInfo, names: string[]): Check[] {
  const checks: Check[] = [optInCheck(pod, names)];
  if (checks[0].status !== "ok") return checks;
  const dual = names.length === 2;
  const families: Family[] = [];
  for (const name of names) {
    const subnet = s.subnets.find(x => nameOf(x) === name);
    const tag = dual && subnet ? `${name} (${familyOf(subnet)})` : name;
    checks.push(...checkSubnet(subnet, tag, info));
    const claim = claimsOf(pod).find(c => c.subnet === name);
    if (subnet) families.push({ name, tag, subnet, claim });
  }
  if (families.length < names.length) return checks;
  const pairProblem = dual ? dualPairProblem(families[0].subnet, families[1].subnet) : undefined;
  if (pairProblem)
    return [
      ...checks,
      fail(
        "pair",
        `MacvlanSubnets ${names[0]} and ${names[1]} cannot share one net1: ${pairProblem}`,
        `name two subnets of one parent, one IPv4 and one IPv6 (${LABEL_SUBNET} annotation, or the namespace's ${LABEL_SUBNET} and ${LABEL_SUBNET_DUAL} labels), then recreate the pod`,
      ),
    ];
  const own = leasesOfPod(
    pod,
    s.leases.filter(l => names.includes(l.spec?.subnet ?? "")),
    info,
  );
  const leases = families.map(f => own.find(l => l.spec?.subnet === f.name));
  families.forEach((f, i) => checks.push(checkLease(pod, leases[i], f, s.leases, own)));
  const held = leases.filter((l): l is MacvlanLease => !!l);
  if (held.length < families.length) return checks;
  const nad = managedNadName(families[0].subnet, families[1]?.subnet);
  checks.push(checkSelection(pod, held, nad));
  checks.push(checkNetworkStatus(pod, held, nad, families));
  const known = families.flatMap(f =>
    f.subnet.spec ? [{ name: f.name, spec: f.subnet.spec }] : [],
  );
  const routes = resolvePodAddresses(pod, known);
  families.forEach((f, i) => checks.push(checkAgent(pod, f, s.pods, held[i], routes, dual)));
  return checks;
}

function optInCheck(pod: Pod, names: string[]): Check {
  const ns = pod.metadata?.namespace;
  const fromPod = !!pod.metadata?.annotations?.[LABEL_SUBNET];
  if (names.length > 2 || names.some(n => !n) || new Set(names).size < names.length)
    return fail(
      "opt-in",
      `asks for "${names.join(",")}" (${fromPod ? "pod annotation" : "namespace labels"}): a pod gets one subnet, or two of different IP families`,
      fromPod
        ? `set ${LABEL_SUBNET} on the pod's template to one subnet or a pair (e.g. "lan,lan6"), then recreate the pod`
        : `fix the ${LABEL_SUBNET}/${LABEL_SUBNET_DUAL} labels of namespace ${ns}`,
    );
  if (names.length === 1)
    return ok(
      "opt-in",
      `asks for subnet ${names[0]} (${fromPod ? "pod annotation" : `namespace label ${LABEL_SUBNET}`})`,
    );
  return ok(
    "opt-in",
    `asks for subnets ${names[0]} and ${names[1]}, dual stack (${fromPod ? "pod annotation" : `namespace labels ${LABEL_SUBNET}, ${LABEL_SUBNET_DUAL}`})`,
  );
}

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

/** `name` is how the steps name the subnet (with its family for a dual-stack pod). */
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
  const plain = nameOf(subnet);
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
          ? `grow spec.ranges of ${plain} or delete pods that no longer need an address (kubectl macvlan leases --subnet ${plain})`
          : `fix the subnet's spec (kubectl describe mvs ${plain})`,
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
        `add ${ns.name} to spec.namespaces of MacvlanSubnet ${plain} (or label the namespace to match its namespaceSelector)`,
      ),
    );
  else out.push(ok("allow-list", `namespace ${ns.name} may use ${name}`));
  return out;
}

/** `own`: the pod's leases of every family it asks for. */
function checkLease(
  pod: Pod,
  lease: MacvlanLease | undefined,
  f: Family,
  all: MacvlanLease[],
  own: MacvlanLease[],
): Check {
  if (!lease) return missingLease(pod, f, all, own);
  const phase = lease.status?.phase ?? "Reserved";
  const desc = `lease ${nameOf(lease)}: ${lease.spec?.ip} ${lease.spec?.mac}, ${phase}`;
  const mac = f.claim?.mac;
  if (mac && lease.spec?.mac && mac.toLowerCase() !== lease.spec.mac.toLowerCase())
    return fail(
      "lease",
      `${desc}, but the pod's ${ANN_MAC} is ${mac}`,
      "delete the pod so it is admitted again (net1 has one MAC, every lease of the pod holds it)",
    );
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
      ? `if it stays Reserved for more than a minute, look at the watcher: ${WATCHER_LOG}`
      : undefined,
  );
}

function missingLease(pod: Pod, f: Family, all: MacvlanLease[], own: MacvlanLease[]): Check {
  const podName = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
  const recreate = `delete the pod so its controller recreates it through admission (kubectl delete pod -n ${pod.metadata?.namespace} ${pod.metadata?.name})`;
  const claim = f.claim;
  if (!claim)
    return fail(
      "lease",
      `no MacvlanLease of ${f.tag} belongs to pod ${podName} (admission did not run for it: created before the namespace opted in, or the webhook was skipped)`,
      recreate,
    );
  const name = safeLeaseName(claim.subnet, claim.ip);
  const other = all.find(l => nameOf(l) === name);
  const ref = other?.spec?.podRef;
  const detail = `no MacvlanLease of ${f.tag} belongs to pod ${podName}`;
  if (other)
    return fail(
      "lease",
      `${detail}; lease ${name} exists but belongs to ${ref ? `${ref.namespace}/${ref.name ?? "?"}` : "no pod"}`,
      recreate,
    );
  const claimText = `${detail}; the pod's annotations claim ${claim.ip} but no lease ${name} exists`;
  // A dual-stack pod that lost one family's lease: the watcher's guarded repair remakes it.
  if (own.length)
    return fail(
      "lease",
      `${claimText} (its other family's lease ${own.map(nameOf).join(", ")} does)`,
      `wait for the watcher's repair to remake lease ${name} for ${claim.ip} (within a resync, 60 s, when the address is free); if it stays missing, read the watcher's log (${WATCHER_LOG}) or ${recreate}`,
    );
  return fail("lease", claimText, recreate);
}

function safeLeaseName(subnet: string, ip: string): string {
  try {
    return leaseName(subnet, ip);
  } catch {
    return "";
  }
}

const ipsOf = (leases: MacvlanLease[]) => leases.map(l => l.spec!.ip);

/** The Multus selection names the pod's managed NAD (the pair's, dual stack) with every IP. */
function checkSelection(pod: Pod, leases: MacvlanLease[], nad: string): Check {
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
  const sel = parsed.selections.find(x => x.name === nad && x.namespace === ns);
  if (!sel)
    return fail(
      "multus",
      `${which} does not select ${ns}/${nad}`,
      "delete the pod so admission writes the selection again",
    );
  const ips = (sel.ips ?? []).map(ipOnly);
  const leased = ipsOf(leases);
  if (!leased.every(ip => hasIp(ips, ip)))
    return fail(
      "multus",
      `the selection of ${nad} asks for ${ips.join(",") || "no IP"}, ${leases.length > 1 ? "the leases hold" : "the lease holds"} ${leased.join(",")}`,
      "delete the pod so it is admitted again",
    );
  return ok(
    "multus",
    `${which} selects ${ns}/${nad} as ${sel.interface ?? (single ? "eth0 (only NIC)" : "net1")} with ${leased.join(", ")}`,
  );
}

/** Multus reports the managed NAD's interface with every leased address. */
function checkNetworkStatus(
  pod: Pod,
  leases: MacvlanLease[],
  nad: string,
  families: Family[],
): Check {
  const ns = pod.metadata?.namespace;
  const node = pod.spec?.nodeName ?? "its node";
  const status = networkStatusOf(pod);
  if (status.kind === "absent")
    return (pod.status?.phase === "Running" ? fail : warn)(
      "network-status",
      `no ${ANN_NETWORK_STATUS} annotation: Multus has not attached the pod's networks (yet)`,
      `check Multus and the macvlan/static CNI plugins on ${node} (kubectl describe pod -n ${ns} ${pod.metadata?.name}: FailedCreatePodSandBox)`,
    );
  if (status.kind === "invalid")
    return fail("network-status", `${ANN_NETWORK_STATUS} is not JSON`, "check Multus on the node");
  const want = `${ns}/${nad}`;
  const entry = status.entries.find(e => e.name === want);
  if (!entry)
    return fail(
      "network-status",
      `Multus reports no interface from ${want}`,
      `check Multus on ${node}: it ran without the pod's selection`,
    );
  const ips = entryIps(entry);
  const tagOf = (l: MacvlanLease) => families.find(f => f.name === l.spec?.subnet)?.tag ?? "";
  const missing = leases.filter(l => !hasIp(ips, l.spec!.ip));
  if (missing.length)
    return fail(
      "network-status",
      `Multus attached ${entry.interface} with ${ips.join(",")}, not the leased ${missing
        .map(l => (families.length > 1 ? `${l.spec!.ip} of ${tagOf(l)}` : l.spec!.ip))
        .join(", ")}`,
      "delete the pod: its interface and its lease disagree",
    );
  return ok(
    "network-status",
    `Multus attached ${entry.interface} ${ipsOf(leases).join(", ")} ${entry.mac ?? ""}`.trim(),
  );
}

/** The agent on the pod's node reports the subnet ready and routes the leased address. */
function checkAgent(
  pod: Pod,
  f: Family,
  pods: Pod[],
  lease: MacvlanLease,
  routes: PodResolution[],
  dual: boolean,
): Check {
  const node = pod.spec?.nodeName;
  if (!node) return warn("agent", "the pod is not scheduled: no node to check");
  const agent = pods.find(
    p =>
      p.metadata?.namespace === AGENT_NAMESPACE &&
      p.metadata?.labels?.["app.kubernetes.io/name"] === AGENT_LABEL &&
      p.spec?.nodeName === node,
  );
  const entry = f.subnet.status?.nodes?.find(n => n.node === node);
  const agentReady = agent?.status?.conditions?.some(
    c => c.type === "Ready" && c.status === "True",
  );
  const podState = agent ? (agentReady ? "Ready" : `${agent.status?.phase}, not Ready`) : "none";
  const log = `kubectl -n ${AGENT_NAMESPACE} logs ${agent ? nameOf(agent) : `ds/${AGENT_LABEL}`}`;
  if (!entry)
    return fail(
      "agent",
      `no agent has reported ${f.tag} for node ${node} (agent pod: ${podState})`,
      `check the agent DaemonSet on ${node}: kubectl -n ${AGENT_NAMESPACE} get pods -l app.kubernetes.io/name=${AGENT_LABEL} -o wide`,
    );
  if (!entry.ready)
    return fail(
      "agent",
      `agent on ${node} reports ${f.tag} not ready: ${entry.message ?? ""}`,
      `fix what the agent says (its log: ${log}); the node cannot reach its macvlan pods meanwhile`,
    );
  const ip = lease.spec!.ip;
  const route = routes.find(r => r.kind === "address" && r.address.subnet === f.name);
  if (route?.kind !== "address") {
    const why = routes.find(r => r.kind !== "address");
    const reason = why?.kind === "unresolved" || why?.kind === "ignored" ? why.reason : "";
    return fail(
      "agent",
      `the agent on ${node} cannot tell the pod's address in ${f.tag}${reason ? `: ${reason}` : ""}, so it routes no ${ip}`,
      `check the pod's ${ANN_NETWORK_STATUS} and ${ANN_MULTUS_NETWORKS} annotations (kubectl get pod -n ${pod.metadata?.namespace} ${pod.metadata?.name} -o yaml); if Multus attached ${ip}, read the agent's log (${log})`,
    );
  }
  if (!hasIp([route.address.ip], ip))
    return fail(
      "agent",
      `the agent on ${node} routes ${route.address.ip} (from the pod's ${route.address.source}), the lease of ${f.tag} holds ${ip}`,
      "delete the pod: its interface and its lease disagree",
    );
  return ok(
    "agent",
    `agent on ${node} (${podState}): ${entry.message ?? "ready"}; it routes ${ip}${dual ? ` of ${f.tag}` : ""} via shim ${entry.shim ?? "?"}`,
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
