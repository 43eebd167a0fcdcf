// Per-node CNI configuration: Multus (thin plugin), the only file in the conf dir, delegating to
// the cluster network (bridge cni0 + host-local on the node's pod CIDR, in its own directory) for eth0.
import * as fs from "node:fs";
import * as path from "node:path";
import {
  NodeSpec,
  cniBinDir,
  CNI_BRIDGE,
  CLUSTER_POD_CIDR,
  SERVICE_CIDR,
  nodePaths,
} from "./config";

export const CNI_VERSION = "1.0.0";
export const CLUSTER_NETWORK_NAME = "pmv-cluster";

export function clusterNetworkConfig(n: NodeSpec) {
  const np = nodePaths(n.name);
  return {
    cniVersion: CNI_VERSION,
    name: CLUSTER_NETWORK_NAME,
    plugins: [
      {
        type: "bridge",
        bridge: CNI_BRIDGE,
        isGateway: true,
        isDefaultGateway: true,
        ipMasq: false,
        hairpinMode: true,
        ipam: {
          type: "host-local",
          dataDir: np.hostLocalData,
          ranges: [[{ subnet: n.podCIDR, gateway: n.podGateway }]],
          // Explicit cluster routes (as flannel sets them): they keep pod and service traffic on
          // eth0 when a pod's default route moves to its macvlan net1 (podDefaultGateway).
          routes: [{ dst: CLUSTER_POD_CIDR }, { dst: SERVICE_CIDR }],
        },
      },
    ],
  };
}

export function multusConfig(n: NodeSpec) {
  const np = nodePaths(n.name);
  return {
    cniVersion: CNI_VERSION,
    name: "multus-cni-network",
    type: "multus",
    kubeconfig: np.multusKubeconfig,
    confDir: np.netd,
    cniDir: np.multusCache,
    binDir: cniBinDir(),
    // A directory holding only the cluster network's conflist. By name, Multus first GETs a
    // NetworkAttachmentDefinition of that name in kube-system and posts a Warning Event
    // NoNetworkFound on every pod when there is none (one GET and one Event per pod), then reads
    // confDir. A file path to the .conflist skips that too, but Multus caches such a delegate
    // without its plugin fields and the DEL then fails; a directory loads like a name.
    clusterNetwork: path.dirname(np.clusterNetwork),
    multusNamespace: "kube-system",
    systemNamespaces: ["kube-system"],
    logFile: np.multusLog,
    logLevel: "verbose",
    logToStderr: false,
  };
}

export function writeCniConfig(n: NodeSpec): void {
  const np = nodePaths(n.name);
  for (const d of [np.netd, path.dirname(np.clusterNetwork), np.multusCache, np.hostLocalData])
    fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(np.clusterNetwork, JSON.stringify(clusterNetworkConfig(n), null, 2) + "\n");
  fs.writeFileSync(np.multusConf, JSON.stringify(multusConfig(n), null, 2) + "\n");
}
