// kube-proxy as kubeadm runs it: a DaemonSet in kube-system (hostNetwork, privileged, iptables
// mode), its ServiceAccount bound to the built-in ClusterRole system:node-proxier, and a ConfigMap
// with its KubeProxyConfiguration and an in-cluster kubeconfig (the pod's own token). On each node
// it writes the node network namespace's nat and filter rules: ClusterIPs and NodePorts.
import { API_SERVER, CLUSTER_POD_CIDR } from "../config";
import { KUBE_PROXY_IMAGE } from "../../kubelet/config";

type Obj = Record<string, unknown>;
const NS = "kube-system";
const SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
const CONFIG_DIR = "/var/lib/kube-proxy";
const labels = { "k8s-app": "kube-proxy" };

function kubeProxyConfig(): string {
  const cfg = {
    apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
    kind: "KubeProxyConfiguration",
    mode: "iptables",
    clusterCIDR: CLUSTER_POD_CIDR,
    clientConnection: { kubeconfig: `${CONFIG_DIR}/kubeconfig.conf` },
    // nf_conntrack_max is not writable in a network namespace: leave it alone.
    conntrack: { maxPerCore: 0 },
    // NodePorts on the node's LAN address (the InternalIP), as upstream recommends.
    nodePortAddresses: ["primary"],
    healthzBindAddress: "0.0.0.0:10256",
    metricsBindAddress: "127.0.0.1:10249",
  };
  return JSON.stringify(cfg, null, 2) + "\n";
}

/** kubeadm's kubeconfig.conf: the API server's LAN address, the ServiceAccount's token and CA. */
function inClusterKubeconfig(): string {
  const cfg = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      {
        name: "default",
        cluster: { server: API_SERVER, "certificate-authority": `${SA_DIR}/ca.crt` },
      },
    ],
    users: [{ name: "default", user: { tokenFile: `${SA_DIR}/token` } }],
    contexts: [{ name: "default", context: { cluster: "default", user: "default" } }],
    "current-context": "default",
  };
  return JSON.stringify(cfg, null, 2) + "\n";
}

function daemonSet(): Obj {
  return {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: { name: "kube-proxy", namespace: NS, labels },
    spec: {
      selector: { matchLabels: labels },
      updateStrategy: { type: "RollingUpdate" },
      template: {
        metadata: { labels },
        spec: {
          hostNetwork: true,
          priorityClassName: "system-node-critical",
          serviceAccountName: "kube-proxy",
          nodeSelector: { "kubernetes.io/os": "linux" },
          tolerations: [{ operator: "Exists" }],
          containers: [
            {
              name: "kube-proxy",
              image: KUBE_PROXY_IMAGE,
              imagePullPolicy: "Never",
              command: [
                "/usr/local/bin/kube-proxy",
                `--config=${CONFIG_DIR}/config.conf`,
                "--hostname-override=$(NODE_NAME)",
              ],
              env: [{ name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } }],
              securityContext: { privileged: true },
              readinessProbe: { httpGet: { path: "/healthz", port: 10256 }, periodSeconds: 2 },
              volumeMounts: [
                { name: "kube-proxy", mountPath: CONFIG_DIR },
                { name: "xtables-lock", mountPath: "/run/xtables.lock" },
              ],
            },
          ],
          volumes: [
            { name: "kube-proxy", configMap: { name: "kube-proxy" } },
            { name: "xtables-lock", hostPath: { path: "/run/xtables.lock", type: "FileOrCreate" } },
          ],
        },
      },
    },
  };
}

export function kubeProxyManifests(): Obj[] {
  return [
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "kube-proxy", namespace: NS } },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: "kubeadm:node-proxier" },
      roleRef: {
        apiGroup: "rbac.authorization.k8s.io",
        kind: "ClusterRole",
        name: "system:node-proxier",
      },
      subjects: [{ kind: "ServiceAccount", name: "kube-proxy", namespace: NS }],
    },
    {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "kube-proxy", namespace: NS, labels },
      data: { "config.conf": kubeProxyConfig(), "kubeconfig.conf": inClusterKubeconfig() },
    },
    daemonSet(),
  ];
}
