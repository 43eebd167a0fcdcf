// The chaos suite's cluster I/O, kept thin: one snapshot of what bench/chaos/checks.ts judges
// (pods, leases, subnets, StatefulSets from the API server; each node's routes and addresses from
// `ip -j` in its network namespace), and the module's pods with their restart counts.
import type { MacvlanLease, MacvlanSubnet } from "../../crds/types";
import { parseLinks, parseRoutes } from "../../agent/kernel";
import { nodeAddresses } from "../../agent/phases/routes";
import type { NodeSpec } from "../../hack/cluster/config";
import type { Kube } from "../../hack/cluster/kube";
import { runAsync } from "../../hack/cluster/proc";
import type { StatefulSetSnapshot } from "../../lib/decide/release";
import type { ChaosPod, ChaosSnapshot, NodeRoutes, PodState } from "./checks";

const LEASES = "/apis/macvlan.dev/v1alpha1/macvlanleases";
const SUBNETS = "/apis/macvlan.dev/v1alpha1/macvlansubnets";

async function ipJson(node: string, args: string[]): Promise<string> {
  const r = await runAsync("ip", ["-n", node, "-j", ...args], { timeoutMs: 15_000 });
  if (r.code !== 0) throw new Error(`ip -n ${node} -j ${args.join(" ")}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** The node's routes (both families, table main) and addresses, as the agent reads them. */
export async function nodeRoutes(node: string): Promise<NodeRoutes> {
  const [links, v4, v6] = await Promise.all([
    ipJson(node, ["-d", "addr", "show"]),
    ipJson(node, ["-4", "route", "show", "table", "main"]),
    ipJson(node, ["-6", "route", "show", "table", "main"]),
  ]);
  return {
    node,
    routes: [...parseRoutes(v4, 4), ...parseRoutes(v6, 6)],
    addresses: nodeAddresses(parseLinks(links)),
  };
}

/** Pods (every namespace) and leases: enough to look for duplicates while the run goes on. */
export async function readPodsAndLeases(
  api: Kube,
): Promise<Pick<ChaosSnapshot, "pods" | "leases">> {
  const [pods, leases] = await Promise.all([
    api.get<{ items: ChaosPod[] }>("/api/v1/pods"),
    api.get<{ items: MacvlanLease[] }>(LEASES),
  ]);
  return { pods: pods.items, leases: leases.items };
}

/** Everything the checks judge; throws when the API server or a node cannot be read. */
export async function readSnapshot(
  api: Kube,
  nodes: NodeSpec[],
  graceSeconds: number,
): Promise<ChaosSnapshot> {
  const [pl, subnets, sets, routes] = await Promise.all([
    readPodsAndLeases(api),
    api.get<{ items: MacvlanSubnet[] }>(SUBNETS),
    api.get<{ items: (StatefulSetSnapshot & { metadata: { namespace: string; name: string } })[] }>(
      "/apis/apps/v1/statefulsets",
    ),
    Promise.all(nodes.map(n => nodeRoutes(n.name))),
  ]);
  const statefulSets = new Map(
    sets.items.map(s => [`${s.metadata.namespace}/${s.metadata.name}`, s]),
  );
  return {
    ...pl,
    subnets: subnets.items,
    statefulSets,
    nodes: routes,
    graceSeconds,
    now: new Date(),
  };
}

/** Pods of a namespace matching a label selector, with restart counts (for the fault table). */
export async function podStates(
  api: Kube,
  namespace: string,
  selector: string,
): Promise<PodState[]> {
  const l = await api.get<{ items: ChaosPod[] }>(`/api/v1/namespaces/${namespace}/pods`, {
    labelSelector: selector,
  });
  type Status = {
    containerStatuses?: { restartCount?: number }[];
    conditions?: { type: string; status: string }[];
  };
  return l.items.map(p => {
    const st = (p.status ?? {}) as Status;
    return {
      name: p.metadata?.name ?? "",
      uid: p.metadata?.uid ?? "",
      node: p.spec?.nodeName ?? "",
      restarts: (st.containerStatuses ?? []).reduce((n, c) => n + (c.restartCount ?? 0), 0),
      ready: !!st.conditions?.some(c => c.type === "Ready" && c.status === "True"),
    };
  });
}
