// A Prometheus scrape configuration for pepr-macvlan without the Prometheus Operator (pure): the
// pods of the module's namespace, found through the Kubernetes API (kubernetes_sd_configs, role
// pod), so it works for either install (Helm or `npx pepr deploy` + agent/deploy/, which has no
// metrics Service):
// - job `pepr-macvlan`: the admission and watcher pods (label pepr.dev/controller), Pepr's
//   /metrics over HTTPS on :3000 (Pepr's own self-signed serving certificate: not verified);
// - job `pepr-macvlan-agent`: the agents (label app.kubernetes.io/name=pepr-macvlan-agent),
//   /metrics over HTTP on :9478 of their node (hostNetwork: the pod IP is the node's).
// A Prometheus built without Kubernetes discovery (Debian's package, which the scrape test runs)
// reads the pods from files instead (file_sd_configs): podTargetGroups writes them with the labels
// Kubernetes discovery gives a pod, so the jobs' relabelling is the same.
// Prometheus reads YAML, and JSON is YAML: the text is JSON. docs/operations.md shows it.

/** Where the pods come from: the Kubernetes API (a kubeconfig outside the cluster; in a pod, its
 * ServiceAccount), or files of target groups (podTargetGroups). */
export type Discovery = { kubernetes: { kubeconfig?: string } } | { files: string[] };

export interface ScrapeOptions {
  /** The namespace of the module and the agents (default pepr-system). */
  namespace?: string;
  /** Seconds between scrapes (default 15). */
  intervalSeconds?: number;
  /** Default: the Kubernetes API, in the cluster. */
  discovery?: Discovery;
  /** Pepr's metrics port (default 3000). */
  modulePort?: number;
  /** The agents' AGENT_METRICS_PORT (default 9478). */
  agentPort?: number;
}

type Relabel = Record<string, string | string[]>;

export interface ScrapeJob {
  job_name: string;
  scheme: "http" | "https";
  metrics_path: string;
  tls_config?: { insecure_skip_verify: boolean };
  kubernetes_sd_configs?: object[];
  file_sd_configs?: { files: string[]; refresh_interval: string }[];
  relabel_configs: Relabel[];
}

export interface PrometheusConfig {
  global: { scrape_interval: string; evaluation_interval: string };
  scrape_configs: ScrapeJob[];
}

/** A Kubernetes label as discovery names it: __meta_kubernetes_pod_label_<this>. */
const labelName = (key: string) => key.replace(/[^a-zA-Z0-9_]/g, "_");

const keepRunning: Relabel = {
  source_labels: ["__meta_kubernetes_pod_phase"],
  regex: "Running",
  action: "keep",
};

/** Relabelling: keep the pods whose `label` matches `regex`, scrape podIP:port, name pod and node. */
function podRelabels(label: string, regex: string, port: number): Relabel[] {
  const meta = `__meta_kubernetes_pod_label_${labelName(label)}`;
  return [
    { source_labels: [meta], regex, action: "keep" },
    keepRunning,
    {
      source_labels: ["__meta_kubernetes_pod_ip"],
      regex: "(.+)",
      target_label: "__address__",
      replacement: `$1:${port}`,
    },
    { source_labels: ["__meta_kubernetes_pod_name"], target_label: "pod" },
    { source_labels: ["__meta_kubernetes_pod_node_name"], target_label: "node" },
  ];
}

export function scrapeConfig(o: ScrapeOptions = {}): PrometheusConfig {
  const namespace = o.namespace ?? "pepr-system";
  const d = o.discovery ?? { kubernetes: {} };
  const sd =
    "files" in d
      ? { file_sd_configs: [{ files: d.files, refresh_interval: "5s" }] }
      : {
          kubernetes_sd_configs: [
            {
              role: "pod",
              namespaces: { names: [namespace] },
              ...(d.kubernetes.kubeconfig ? { kubeconfig_file: d.kubernetes.kubeconfig } : {}),
            },
          ],
        };
  const interval = `${o.intervalSeconds ?? 15}s`;
  return {
    global: { scrape_interval: interval, evaluation_interval: interval },
    scrape_configs: [
      {
        job_name: "pepr-macvlan",
        scheme: "https",
        metrics_path: "/metrics",
        tls_config: { insecure_skip_verify: true },
        ...sd,
        relabel_configs: [
          ...podRelabels("pepr.dev/controller", "admission|watcher", o.modulePort ?? 3000),
          {
            source_labels: ["__meta_kubernetes_pod_label_pepr_dev_controller"],
            target_label: "controller",
          },
        ],
      },
      {
        job_name: "pepr-macvlan-agent",
        scheme: "http",
        metrics_path: "/metrics",
        ...sd,
        relabel_configs: podRelabels(
          "app.kubernetes.io/name",
          "pepr-macvlan-agent",
          o.agentPort ?? 9478,
        ),
      },
    ],
  };
}

/** The configuration file's text (JSON, which Prometheus reads as YAML). */
export const renderScrapeConfig = (o: ScrapeOptions = {}) =>
  JSON.stringify(scrapeConfig(o), null, 2) + "\n";

/** A pod as the API returns it, as much as discovery reads. */
export interface PodLike {
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
  spec?: { nodeName?: string };
  status?: { phase?: string; podIP?: string };
}

/** File discovery's target groups for pods, with the labels Kubernetes discovery (role pod) gives
 * them; pods without an IP yet are left out. */
export function podTargetGroups(pods: PodLike[]) {
  return pods.flatMap(p => {
    const ip = p.status?.podIP;
    if (!ip) return [];
    const labels: Record<string, string> = {
      __meta_kubernetes_namespace: p.metadata?.namespace ?? "",
      __meta_kubernetes_pod_name: p.metadata?.name ?? "",
      __meta_kubernetes_pod_ip: ip,
      __meta_kubernetes_pod_node_name: p.spec?.nodeName ?? "",
      __meta_kubernetes_pod_phase: p.status?.phase ?? "",
    };
    for (const [k, v] of Object.entries(p.metadata?.labels ?? {}))
      labels[`__meta_kubernetes_pod_label_${labelName(k)}`] = v;
    return [{ targets: [ip], labels }];
  });
}
