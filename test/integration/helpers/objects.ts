// Builders for objects the integration tests create often. Containers run the busybox image the
// cluster imports on every node (hack/kubelet/images.ts); there is no registry to pull from.

export const BUSYBOX = "busybox:1.36";
/** Never pull: the image is imported on every node and there is no registry. */
export const BUSYBOX_CONTAINER = { image: BUSYBOX, imagePullPolicy: "IfNotPresent" } as const;

export interface MacvlanNadOptions {
  name: string;
  namespace: string;
  master?: string;
  mode?: "bridge" | "private" | "vepa" | "passthru";
  /** IPAM section; default static with the `ips` capability (addresses from the Multus selection). */
  ipam?: Record<string, unknown>;
}

/** A NetworkAttachmentDefinition for macvlan (+ static IPAM taking `ips` from the selection). */
export function macvlanNad(o: MacvlanNadOptions) {
  const config = {
    cniVersion: "1.0.0",
    name: o.name,
    type: "macvlan",
    master: o.master ?? "eth0",
    mode: o.mode ?? "bridge",
    capabilities: { ips: true, mac: true },
    ipam: o.ipam ?? { type: "static" },
  };
  return {
    apiVersion: "k8s.cni.cncf.io/v1",
    kind: "NetworkAttachmentDefinition",
    metadata: { name: o.name, namespace: o.namespace },
    spec: { config: JSON.stringify(config) },
  };
}

export interface NetworkSelection {
  name: string;
  namespace?: string;
  interface?: string;
  ips?: string[];
  mac?: string;
  "default-route"?: string[];
}

export interface TestPodOptions {
  name: string;
  namespace: string;
  /** Pin to a node (through the scheduler, with a kubernetes.io/hostname nodeSelector). */
  node?: string;
  command?: string[];
  env?: Array<Record<string, unknown>>;
  networks?: NetworkSelection[];
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  readinessProbe?: Record<string, unknown>;
  livenessProbe?: Record<string, unknown>;
  hostNetwork?: boolean;
  ports?: Array<{ name?: string; containerPort: number }>;
  terminationGracePeriodSeconds?: number;
}

/** Shell snippet: serve "ok" over HTTP on a port with busybox httpd (in the pod's directory). */
export const httpServer = (port = 8080) => [
  "sh",
  "-c",
  `mkdir -p www && echo ok > www/index.html && exec busybox httpd -f -p ${port} -h www`,
];

export function testPod(o: TestPodOptions) {
  const annotations: Record<string, string> = { ...(o.annotations ?? {}) };
  if (o.networks) annotations["k8s.v1.cni.cncf.io/networks"] = JSON.stringify(o.networks);
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: o.name,
      namespace: o.namespace,
      labels: o.labels ?? { app: o.name },
      annotations,
    },
    spec: {
      ...(o.node ? { nodeSelector: { "kubernetes.io/hostname": o.node } } : {}),
      ...(o.hostNetwork ? { hostNetwork: true } : {}),
      terminationGracePeriodSeconds: o.terminationGracePeriodSeconds ?? 5,
      containers: [
        {
          name: "main",
          ...BUSYBOX_CONTAINER,
          command: o.command ?? ["sleep", "infinity"],
          ...(o.env ? { env: o.env } : {}),
          ...(o.ports ? { ports: o.ports } : {}),
          ...(o.readinessProbe ? { readinessProbe: o.readinessProbe } : {}),
          ...(o.livenessProbe ? { livenessProbe: o.livenessProbe } : {}),
        },
      ],
    },
  };
}

export interface TestDeploymentOptions {
  name: string;
  namespace: string;
  replicas: number;
  command?: string[];
  terminationGracePeriodSeconds?: number;
}

/** A Deployment of busybox pods labelled app=<name>, running `sleep infinity` by default. */
export function testDeployment(o: TestDeploymentOptions) {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: o.name, namespace: o.namespace },
    spec: {
      replicas: o.replicas,
      selector: { matchLabels: { app: o.name } },
      template: {
        metadata: { labels: { app: o.name } },
        spec: {
          terminationGracePeriodSeconds: o.terminationGracePeriodSeconds ?? 1,
          containers: [
            { name: "main", ...BUSYBOX_CONTAINER, command: o.command ?? ["sleep", "infinity"] },
          ],
        },
      },
    },
  };
}

/**
 * A MacvlanSubnet on the local cluster's LAN: parent eth0, 198.18.0.0/16 with the router
 * 198.18.0.1 as gateway, unless `spec` says otherwise.
 */
export function macvlanSubnet(name: string, spec: Record<string, unknown> = {}) {
  return {
    apiVersion: "macvlan.dev/v1alpha1",
    kind: "MacvlanSubnet",
    metadata: { name },
    spec: { master: "eth0", cidr: "198.18.0.0/16", gateway: "198.18.0.1", ...spec },
  };
}

/** A Reserved MacvlanLease for a pod that never comes (the resync reclaims it after its TTL). */
export function unclaimedLease(subnet: string, ip: string, mac = "02:00:00:00:00:01") {
  return {
    apiVersion: "macvlan.dev/v1alpha1",
    kind: "MacvlanLease",
    metadata: {
      name: `${subnet}-${ip.replace(/[.:]/g, "-")}`,
      labels: { "macvlan.dev/subnet": subnet, "macvlan.dev/pod-namespace": "ghost" },
    },
    spec: { subnet, ip, mac, podRef: { namespace: "ghost" } },
  };
}
