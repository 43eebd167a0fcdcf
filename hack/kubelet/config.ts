// Names and paths of the kubelet runtime (`hack/cluster.sh up --runtime kubelet`): per node a
// containerd and a real kubelet in the node's network namespace, with their own directories under
// the node's state directory, their own socket and their own cgroup subtree.
import * as os from "node:os";
import * as path from "node:path";
import { nodePaths } from "../cluster/config";

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
/** Fallbacks when the generated manifests are not there to read the names from. */
export const AGENT_IMAGE_FALLBACK = "ghcr.io/pepr-macvlan/agent:0.1.0";
export const CONTROLLER_REPO = "ghcr.io/defenseunicorns/pepr/controller";

/** containerd's CRI namespace (the kubelet sees only images in it). */
export const CRI_NAMESPACE = "k8s.io";
export const KUBELET_PORT = 10250;
export const KUBELET_HEALTHZ_PORT = 10248;

/** Debian packages the kubelet runtime needs (command → package). */
export const KUBELET_PACKAGES: Array<{ cmd: string; pkg: string; why: string }> = [
  {
    cmd: "containerd",
    pkg: "containerd",
    why: "CRI runtime (with ctr and containerd-shim-runc-v2)",
  },
  { cmd: "runc", pkg: "runc", why: "OCI runtime" },
  { cmd: "iptables", pkg: "iptables", why: "DNAT for the kubernetes Service (no kube-proxy)" },
  { cmd: "tar", pkg: "tar", why: "image layers" },
];

/** cgroup v1 hierarchies (mounted under /sys/fs/cgroup) the node subtrees are made in. */
export const CGROUP_ROOT_FS = "/sys/fs/cgroup";

export interface KubeletNodePaths {
  /** Everything of this runtime on the node lives below this directory (removed by `down`). */
  dir: string;
  containerdConfig: string;
  containerdRoot: string;
  containerdState: string;
  containerdSock: string;
  containerdLog: string;
  /** CNI binaries containerd runs: the standard plugins and a Multus wrapper. */
  cniBin: string;
  kubeletConfig: string;
  kubeletRoot: string;
  kubeletLog: string;
  podLogs: string;
  resolvConf: string;
  /** The node's cgroup subtree (kubelet cgroupRoot), the same path in every hierarchy. */
  cgroupRoot: string;
}

export function kubeletNodePaths(node: string): KubeletNodePaths {
  const dir = path.join(nodePaths(node).dir, "kubelet-runtime");
  const containerdState = path.join(dir, "containerd", "state");
  return {
    dir,
    containerdConfig: path.join(dir, "containerd.toml"),
    containerdRoot: path.join(dir, "containerd", "root"),
    containerdState,
    containerdSock: path.join(dir, "containerd.sock"),
    containerdLog: path.join(dir, "containerd.log"),
    cniBin: path.join(dir, "cni-bin"),
    kubeletConfig: path.join(dir, "kubelet-config.json"),
    kubeletRoot: path.join(dir, "kubelet"),
    kubeletLog: path.join(dir, "kubelet.log"),
    podLogs: path.join(dir, "pod-logs"),
    resolvConf: path.join(dir, "resolv.conf"),
    cgroupRoot: `/${node}`,
  };
}

/** Record names (hack/cluster proc records) of a node's daemons. */
export const containerdRecord = (node: string) => `containerd-${node}`;
export const kubeletRecord = (node: string) => `kubelet-${node}`;
