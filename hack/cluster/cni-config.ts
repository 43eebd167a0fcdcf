// Per-node CNI configuration: Multus (thin plugin) first in the conf dir, delegating to the
// cluster network (bridge cni0 + host-local on the node's pod CIDR) for eth0.
import * as fs from "node:fs";
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
    // By name, found in confDir. (A file path to a .conflist works for ADD, but multus v4.2.3
    // caches such a delegate without its plugin fields and the DEL then fails.)
    clusterNetwork: CLUSTER_NETWORK_NAME,
    multusNamespace: "kube-system",
    systemNamespaces: ["kube-system"],
    logFile: np.multusLog,
    logLevel: "verbose",
    logToStderr: false,
  };
}

export function writeCniConfig(n: NodeSpec): void {
  const np = nodePaths(n.name);
  for (const d of [np.netd, np.multusCache, np.hostLocalData, np.pods])
    fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(np.clusterNetwork, JSON.stringify(clusterNetworkConfig(n), null, 2) + "\n");
  fs.writeFileSync(np.multusConf, JSON.stringify(multusConfig(n), null, 2) + "\n");
}
