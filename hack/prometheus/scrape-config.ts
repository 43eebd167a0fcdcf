// A Prometheus scrape configuration for pepr-macvlan without the Prometheus Operator (pure): pods
// found through the Kubernetes API (kubernetes_sd_configs, role pod) in the module's namespace,
// so it works for either install (Helm or `npx pepr deploy` + agent/deploy/, which has no metrics
// Service):
// - job `pepr-macvlan`: the admission and watcher pods (label pepr.dev/controller), Pepr's
//   /metrics over HTTPS on :3000 (Pepr's own self-signed serving certificate: not verified);
// - job `pepr-macvlan-agent`: the agents (label app.kubernetes.io/name=pepr-macvlan-agent),
//   /metrics over HTTP on :9478 of their node (hostNetwork: the pod IP is the node's).
// Prometheus reads YAML, and JSON is YAML: the text is JSON. docs/operations.md shows it.

export interface ScrapeOptions {
  /** The namespace of the module and the agents (default pepr-system). */
  namespace?: string;
  /** Seconds between scrapes (default 15). */
  intervalSeconds?: number;
  /** A kubeconfig for a Prometheus outside the cluster; in a pod, its ServiceAccount is used. */
  kubeconfig?: string;
  /** Pepr's metrics port (default 3000). */
  modulePort?: number;
  /** The agents' AGENT_METRICS_PORT (default 9478). */
  agentPort?: number;
}

type Relabel = Record<string, string | string[]>;

const keepRunning: Relabel = {
  source_labels: ["__meta_kubernetes_pod_phase"],
  regex: "Running",
  action: "keep",
};

/** Relabelling: keep the pods whose `label` matches `regex`, scrape podIP:port, name pod and node. */
function podRelabels(label: string, regex: string, port: number): Relabel[] {
  const meta = `__meta_kubernetes_pod_label_${label.replace(/[^a-zA-Z0-9_]/g, "_")}`;
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

export function scrapeConfig(o: ScrapeOptions = {}) {
  const namespace = o.namespace ?? "pepr-system";
  const sd = [
    {
      role: "pod",
      namespaces: { names: [namespace] },
      ...(o.kubeconfig ? { kubeconfig_file: o.kubeconfig } : {}),
    },
  ];
  const interval = `${o.intervalSeconds ?? 15}s`;
  return {
    global: { scrape_interval: interval, evaluation_interval: interval },
    scrape_configs: [
      {
        job_name: "pepr-macvlan",
        scheme: "https",
        metrics_path: "/metrics",
        tls_config: { insecure_skip_verify: true },
        kubernetes_sd_configs: sd,
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
        kubernetes_sd_configs: sd,
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
