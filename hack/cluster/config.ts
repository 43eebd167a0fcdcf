// Names, addresses and paths of the local cluster (design.md §5). Every module of the cluster
// tooling, the kubelet runtime and the integration-test helpers reads them from here.
import { execFileSync } from "node:child_process";
import * as path from "node:path";

/** Repository root (this file is hack/cluster/config.ts). */
export const REPO_ROOT = path.resolve(__dirname, "..", "..");
/** State directory of the running cluster; `down` removes it. */
export const STATE_DIR = process.env.PMV_CLUSTER_DIR ?? path.join(REPO_ROOT, ".cluster");

export const K8S_VERSION = "v1.34.4";
export const DEFAULT_NODES = 2;
export const MAX_NODES = 20;

// ---- Address plan: only 198.18.0.0/15 and 2001:db8::/32 -------------------------------------
export const LAN_PREFIX = 16;
export const LAN_CIDR = "198.18.0.0/16";
export const GW_IP = "198.18.0.1";
export const HOST_IP = "198.18.0.2";
export const LAN6_PREFIX = 64;
export const LAN6_CIDR = "2001:db8:18::/64";
export const GW_IP6 = "2001:db8:18::1";
export const HOST_IP6 = "2001:db8:18::2";
/** Cluster pod CIDRs come from this /17, one /24 per node. */
export const CLUSTER_POD_CIDR = "198.19.0.0/17";
export const SERVICE_CIDR = "198.19.128.0/17";
export const API_SERVICE_IP = "198.19.128.1";
/** ClusterIP of the `kube-dns` Service (CoreDNS), the kubelets' clusterDNS. */
export const DNS_SERVICE_IP = "198.19.128.10";
/** kube-apiserver's default NodePort range, stated here so docs and tests agree. */
export const NODE_PORT_RANGE = "30000-32767";
export const API_PORT = 6443;
export const API_SERVER = `https://${HOST_IP}:${API_PORT}`;
export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;
export const KCM_PORT = 10257;
export const SCHEDULER_PORT = 10259;
export const CLUSTER_DOMAIN = "cluster.local";

// ---- Network namespaces and links --------------------------------------------------------------
/** Every network namespace the cluster creates starts with this prefix. */
export const NETNS_PREFIX = "pmv-";
export const LAN_NETNS = "pmv-lan";
export const GW_NETNS = "pmv-gw";
/** Host-side veth to the LAN bridge (in the host network namespace). */
export const HOST_LINK = "pmv-host";
/** The LAN bridge, inside `pmv-lan`. */
export const LAN_BRIDGE = "br-lan";
/** Pod network namespaces: `pmv-pod-<pod uid>`. */
export const POD_NETNS_PREFIX = "pmv-pod-";
/** The cluster network's bridge on each node (CNI bridge plugin). */
export const CNI_BRIDGE = "cni0";

export interface NodeSpec {
  /** 1-based index. */
  index: number;
  /** Kubernetes Node name, also the node's network namespace. */
  name: string;
  /** eth0 address on the LAN. */
  ip: string;
  ip6: string;
  podCIDR: string;
  /** First address of the pod CIDR: the node's cni0 bridge, pods' default gateway. */
  podGateway: string;
}

export const nodeName = (index: number) => `pmv-node-${index}`;

export function nodeSpec(index: number): NodeSpec {
  if (!Number.isInteger(index) || index < 1 || index > MAX_NODES) {
    throw new Error(`node index ${index} out of range 1..${MAX_NODES}`);
  }
  return {
    index,
    name: nodeName(index),
    ip: `198.18.0.${10 + index}`,
    ip6: `2001:db8:18::${(0x10 + index).toString(16)}`,
    podCIDR: `198.19.${index}.0/24`,
    podGateway: `198.19.${index}.1`,
  };
}

export const podNetns = (podUID: string) => `${POD_NETNS_PREFIX}${podUID}`;

// ---- Files -------------------------------------------------------------------------------------
export const paths = {
  state: STATE_DIR,
  kubeconfig: path.join(STATE_DIR, "kubeconfig"),
  clusterJson: path.join(STATE_DIR, "cluster.json"),
  pki: path.join(STATE_DIR, "pki"),
  etcdData: path.join(STATE_DIR, "etcd"),
  logs: path.join(STATE_DIR, "logs"),
  procs: path.join(STATE_DIR, "procs"),
  nodes: path.join(STATE_DIR, "nodes"),
  lock: path.join(STATE_DIR + ".lock"),
  manifests: path.join(__dirname, "manifests"),
};

export interface NodePaths {
  dir: string;
  kubeconfig: string;
  multusKubeconfig: string;
  /** CNI configuration directory (what the kubelet's --cni-conf-dir would be). */
  netd: string;
  /** The cluster network conflist Multus delegates to (eth0), alone in its directory. */
  clusterNetwork: string;
  multusConf: string;
  /** Multus cniDir (delegate cache) and libcni result cache. */
  multusCache: string;
  hostLocalData: string;
  multusLog: string;
}

export function nodePaths(node: string): NodePaths {
  const dir = path.join(paths.nodes, node);
  const netd = path.join(dir, "net.d");
  return {
    dir,
    kubeconfig: path.join(dir, "kubeconfig"),
    multusKubeconfig: path.join(dir, "multus.kubeconfig"),
    netd,
    clusterNetwork: path.join(dir, "cluster-net.d", "10-pmv-cluster.conflist"),
    multusConf: path.join(netd, "00-multus.conf"),
    multusCache: path.join(dir, "multus"),
    hostLocalData: path.join(dir, "host-local"),
    multusLog: path.join(dir, "multus.log"),
  };
}

let binDirCache: string | undefined;
/** Where hack/build-binaries.sh puts the binaries (it prints it with --print-dir). */
export function binDir(): string {
  if (process.env.PMV_BIN_DIR) return process.env.PMV_BIN_DIR;
  if (!binDirCache) {
    binDirCache = execFileSync(
      "bash",
      [path.join(REPO_ROOT, "hack", "build-binaries.sh"), "--print-dir"],
      {
        encoding: "utf8",
      },
    ).trim();
  }
  return binDirCache;
}
export const bin = (name: string) => path.join(binDir(), name);
export const cniBinDir = () => path.join(binDir(), "cni");

/** What `up` records in cluster.json. */
export interface ClusterInfo {
  nodes: NodeSpec[];
  binDir: string;
  createdAt: string;
  apiServer: string;
}
