// Names and paths of the kubelet runtime (`hack/cluster.sh up`): per node a
// containerd and a real kubelet in the node's network namespace, with their own directories under
// the node's state directory, their own socket and their own cgroup subtree.
import * as os from "node:os";
import * as path from "node:path";
import { K8S_VERSION, nodePaths } from "../cluster/config";

/** Where built image archives and the pause binary are cached (outside the clone, like the binaries). */
export const KUBELET_CACHE = path.join(
  process.env.PEPR_MACVLAN_CACHE ?? path.join(os.homedir(), ".cache", "pepr-macvlan"),
  "kubelet",
);

/** The sandbox image; also kubelet's default, so no pod or flag has to name it. */
export const PAUSE_IMAGE = "registry.k8s.io/pause:3.10.1";
export const BUSYBOX_IMAGES = [
  "docker.io/library/busybox:1.36",
  "docker.io/library/busybox:latest",
];
/** Images of the cluster add-ons (hack/cluster/addons), built from the binaries of hack/build-binaries.sh. */
export const COREDNS_VERSION = "v1.15.0";
export const KUBE_PROXY_IMAGE = `registry.k8s.io/kube-proxy:${K8S_VERSION}`;
export const COREDNS_IMAGE = `registry.k8s.io/coredns/coredns:${COREDNS_VERSION}`;
/** Fallbacks when the generated manifests are not there to read the names from. */
export const AGENT_IMAGE_FALLBACK = "ghcr.io/pepr-macvlan/agent:0.1.0";
export const CONTROLLER_REPO = "ghcr.io/defenseunicorns/pepr/controller";

/** containerd's CRI namespace (the kubelet sees only images in it). */
export const CRI_NAMESPACE = "k8s.io";
export const KUBELET_PORT = 10250;
/**
 * Pods per kubelet node (KubeletConfiguration maxPods). Each node's pod CIDR is a /24 (253 usable
 * addresses after the network, broadcast and cni0's gateway): 250 leaves a few spare.
 */
export const KUBELET_MAX_PODS = 250;
export const KUBELET_HEALTHZ_PORT = 10248;

/** Debian packages the kubelet runtime needs (command → package). */
export const KUBELET_PACKAGES: Array<{ cmd: string; pkg: string; why: string }> = [
  {
    cmd: "containerd",
    pkg: "containerd",
    why: "CRI runtime (with ctr and containerd-shim-runc-v2)",
  },
  { cmd: "runc", pkg: "runc", why: "OCI runtime" },
  { cmd: "iptables", pkg: "iptables", why: "copied into the kube-proxy image (iptables mode)" },
  { cmd: "tar", pkg: "tar", why: "image layers" },
];

/** cgroup v1 hierarchies (mounted under /sys/fs/cgroup) the node subtrees are made in. */
export const CGROUP_ROOT_FS = "/sys/fs/cgroup";

/**
 * Base directory of the kubelet runtime's state: containerd's root, state and socket and the
 * kubelet's root dir per node. Short and fixed on purpose: the kubelet and containerd bind unix
 * sockets below it (…/kubelet/device-plugins/kubelet.sock), and a socket path has at most 107
 * bytes, which a clone's .cluster directory does not guarantee. One cluster per machine anyway
 * (network namespace names are global); `down` removes it.
 */
export const KUBELET_STATE = process.env.PMV_KUBELET_DIR ?? "/var/lib/pmv-kubelet";

export interface KubeletNodePaths {
  /** The node's state (removed by `down` once nothing is mounted below it). */
  dir: string;
  containerdConfig: string;
  containerdRoot: string;
  containerdState: string;
  containerdSock: string;
  /** The logs stay with the cluster's other logs (nodes/<node>/). */
  containerdLog: string;
  /** CNI binaries containerd runs: the standard plugins and a Multus wrapper. */
  cniBin: string;
  kubeletConfig: string;
  kubeletRoot: string;
  kubeletLog: string;
  /** Container logs (kubelet podLogsDir): <namespace>_<pod>_<uid>/<container>/<n>.log. */
  podLogs: string;
  resolvConf: string;
  /** The node's cgroup subtree (kubelet cgroupRoot), the same path in every hierarchy. */
  cgroupRoot: string;
}

export function kubeletNodePaths(node: string): KubeletNodePaths {
  const dir = path.join(KUBELET_STATE, node);
  const files = nodePaths(node).dir;
  return {
    dir,
    containerdConfig: path.join(dir, "containerd.toml"),
    containerdRoot: path.join(dir, "containerd", "root"),
    containerdState: path.join(dir, "containerd", "state"),
    containerdSock: path.join(dir, "containerd.sock"),
    containerdLog: path.join(files, "containerd.log"),
    cniBin: path.join(dir, "cni-bin"),
    kubeletConfig: path.join(dir, "kubelet-config.json"),
    kubeletRoot: path.join(dir, "kubelet"),
    kubeletLog: path.join(files, "kubelet.log"),
    podLogs: path.join(dir, "pod-logs"),
    resolvConf: path.join(dir, "resolv.conf"),
    cgroupRoot: `/${node}`,
  };
}

/** Record names (hack/cluster proc records) of a node's daemons. */
export const containerdRecord = (node: string) => `containerd-${node}`;
export const kubeletRecord = (node: string) => `kubelet-${node}`;
