// Command line of the local cluster; hack/cluster.sh runs it (`npm run cluster -- <command>`).
import { DEFAULT_NODES, MAX_NODES, paths } from "./config";
import { down, ensurePackages, execIn, logs, status, up } from "./cluster";

export const HELP = `Local pepr-macvlan cluster: real etcd, kube-apiserver, kube-controller-manager and
kube-scheduler in the host network namespace; each node is a network namespace on a simulated
LAN (Linux bridge) with Multus (thin plugin) + CNI plugins, containerd and a real kubelet;
kube-proxy and CoreDNS as add-ons. Needs root.

Usage: npm run cluster -- <command> [options]
       bash hack/cluster.sh <command> [options]

Commands:
  up [--nodes N] [--force]
                      Build or reuse the binaries (hack/build-binaries.sh), install missing Debian
                      packages (iproute2, util-linux, openssl, tcpdump, busybox-static, curl,
                      containerd, runc, iptables), remove what an earlier cluster left, then start
                      a fresh cluster with N nodes (default ${DEFAULT_NODES}, at most ${MAX_NODES}). Writes the
                      admin kubeconfig to ${paths.kubeconfig}. While integration tests hold the
                      cluster (their session lock, test/integration/helpers), waits for them;
                      --force does not. Each node runs containerd (Debian) and a real kubelet,
                      images built from local files (hack/kubelet; state in /var/lib/pmv-kubelet;
                      PMV_KUBELET_IMAGES=busybox imports only it, pause and the add-ons), then
                      kube-proxy (iptables) and CoreDNS (kube-dns 198.19.128.10).
  down [--force]      Stop every process the cluster started (by recorded pid), delete its network
                      namespaces and host link, remove ${paths.state}. Safe to repeat.
                      Refuses while integration tests hold the cluster, unless --force.
  status              Processes (pid, RSS), network namespaces, nodes and pods. Exit 1 if unhealthy.
  prereqs             Install the Debian packages the cluster and its tests use, where missing.
  exec <namespace>/<pod> -- <cmd...>
                      Run a command in the pod's network namespace (host filesystem).
  exec node/<node> -- <cmd...>
                      Run a command in a node's network namespace (node: pmv-node-1 or 1).
  exec netns/<name> -- <cmd...>
                      Run a command in another cluster network namespace (pmv-gw, pmv-lan).
  logs <namespace>/<pod> [container]
                      Print a container's output (kubectl logs works too).

Addresses (198.18.0.0/15 only): LAN 198.18.0.0/16, router 198.18.0.1 (pmv-gw), host 198.18.0.2
(pmv-host), node i 198.18.0.<10+i> with pod CIDR 198.19.<i>.0/24, services 198.19.128.0/17
(kube-dns 198.19.128.10, NodePorts 30000-32767), apiserver https://198.18.0.2:6443. Pod network
namespaces are named pmv-pod-<pod uid>.
`;

function parseUp(args: string[]): { nodes: number; force: boolean } {
  let nodes = DEFAULT_NODES;
  let force = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const m = /^--nodes(?:=(.*))?$/.exec(a);
    if (a === "--force") {
      force = true;
    } else if (m) {
      const v = m[1] ?? args[++i];
      nodes = Number(v);
      if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_NODES)
        throw new Error(`--nodes must be 1..${MAX_NODES}, got "${v}"`);
    } else {
      throw new Error(`unknown option for up: ${a}`);
    }
  }
  return { nodes, force };
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case "up":
      await up(parseUp(rest));
      return 0;
    case "down":
      if (rest.some(a => a !== "--force")) throw new Error("down takes no arguments but --force");
      await down(true, rest.includes("--force"));
      return 0;
    case "status":
      return status();
    case "prereqs":
      ensurePackages();
      return 0;
    case "exec": {
      const sep = rest.indexOf("--");
      const target = rest[0];
      if (!target || (sep !== -1 && sep !== 1) || (sep === -1 && rest.length < 2)) {
        throw new Error("usage: exec <namespace>/<pod> -- <cmd...> | exec node/<node> -- <cmd...>");
      }
      return execIn(target, rest.slice(sep === -1 ? 1 : 2));
    }
    case "logs":
      if (!rest[0]) throw new Error("usage: logs <namespace>/<pod> [container]");
      return logs(rest[0], rest[1]);
    case undefined:
    case "help":
    case "-h":
    case "--help":
      process.stdout.write(HELP);
      return cmd === undefined ? 2 : 0;
    default:
      throw new Error(`unknown command "${cmd}" (see --help)`);
  }
}

main(process.argv.slice(2)).then(
  code => process.exit(code),
  (err: unknown) => {
    console.error(`\x1b[31merror:\x1b[0m ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
