// CoreDNS as kubeadm runs it: a Deployment of two replicas in kube-system behind the `kube-dns`
// Service (ClusterIP DNS_SERVICE_IP, the kubelets' clusterDNS), its ServiceAccount with the
// system:coredns ClusterRole, and a Corefile serving cluster.local and the reverse zones.
import { CLUSTER_DOMAIN, DNS_SERVICE_IP } from "../config";
import { COREDNS_IMAGE } from "../../kubelet/config";

type Obj = Record<string, unknown>;
const NS = "kube-system";
const labels = { "k8s-app": "kube-dns" };

/**
 * No `forward`: the simulated LAN has no upstream resolver, so names outside the cluster zones
 * fail at once (SERVFAIL) instead of timing out; and without forward, `loop` has nothing to check.
 */
export const COREFILE = `.:53 {
    errors
    health {
        lameduck 5s
    }
    ready
    kubernetes ${CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    prometheus :9153
    cache 30
    reload
    loadbalance
}
`;

function rbac(): Obj[] {
  return [
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "coredns", namespace: NS } },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: "system:coredns" },
      rules: [
        {
          apiGroups: [""],
          resources: ["endpoints", "services", "pods", "namespaces"],
          verbs: ["list", "watch"],
        },
        {
          apiGroups: ["discovery.k8s.io"],
          resources: ["endpointslices"],
          verbs: ["list", "watch"],
        },
      ],
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: "system:coredns" },
      roleRef: {
        apiGroup: "rbac.authorization.k8s.io",
        kind: "ClusterRole",
        name: "system:coredns",
      },
      subjects: [{ kind: "ServiceAccount", name: "coredns", namespace: NS }],
    },
  ];
}

function container(): Obj {
  return {
    name: "coredns",
    image: COREDNS_IMAGE,
    imagePullPolicy: "Never",
    args: ["-conf", "/etc/coredns/Corefile"],
    resources: { limits: { memory: "170Mi" }, requests: { cpu: "10m", memory: "32Mi" } },
    ports: [
      { name: "dns", containerPort: 53, protocol: "UDP" },
      { name: "dns-tcp", containerPort: 53, protocol: "TCP" },
      { name: "metrics", containerPort: 9153, protocol: "TCP" },
    ],
    securityContext: {
      allowPrivilegeEscalation: false,
      capabilities: { add: ["NET_BIND_SERVICE"], drop: ["ALL"] },
      readOnlyRootFilesystem: true,
    },
    livenessProbe: {
      httpGet: { path: "/health", port: 8080 },
      initialDelaySeconds: 60,
      timeoutSeconds: 5,
      failureThreshold: 5,
    },
    readinessProbe: { httpGet: { path: "/ready", port: 8181 }, periodSeconds: 2 },
    volumeMounts: [{ name: "config-volume", mountPath: "/etc/coredns", readOnly: true }],
  };
}

function deployment(): Obj {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "coredns", namespace: NS, labels },
    spec: {
      replicas: 2,
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } },
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          priorityClassName: "system-cluster-critical",
          serviceAccountName: "coredns",
          // The resolver of the node (kubelet resolvConf), not itself.
          dnsPolicy: "Default",
          nodeSelector: { "kubernetes.io/os": "linux" },
          tolerations: [{ key: "CriticalAddonsOnly", operator: "Exists" }],
          affinity: {
            podAntiAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [
                {
                  weight: 100,
                  podAffinityTerm: {
                    labelSelector: { matchLabels: labels },
                    topologyKey: "kubernetes.io/hostname",
                  },
                },
              ],
            },
          },
          containers: [container()],
          volumes: [
            {
              name: "config-volume",
              configMap: { name: "coredns", items: [{ key: "Corefile", path: "Corefile" }] },
            },
          ],
        },
      },
    },
  };
}

function service(): Obj {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name: "kube-dns",
      namespace: NS,
      labels: {
        ...labels,
        "kubernetes.io/cluster-service": "true",
        "kubernetes.io/name": "CoreDNS",
      },
      annotations: { "prometheus.io/port": "9153", "prometheus.io/scrape": "true" },
    },
    spec: {
      selector: labels,
      clusterIP: DNS_SERVICE_IP,
      ports: [
        { name: "dns", port: 53, protocol: "UDP" },
        { name: "dns-tcp", port: 53, protocol: "TCP" },
        { name: "metrics", port: 9153, protocol: "TCP" },
      ],
    },
  };
}

export function corednsManifests(): Obj[] {
  return [
    ...rbac(),
    {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "coredns", namespace: NS },
      data: { Corefile: COREFILE },
    },
    deployment(),
    service(),
  ];
}
