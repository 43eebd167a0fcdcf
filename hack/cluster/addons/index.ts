// Cluster add-ons of the kubelet runtime, installed by `up` once the nodes are Ready, the way a
// user's cluster runs them: kube-proxy (DaemonSet, iptables mode) and CoreDNS (Deployment and the
// kube-dns Service). Their images are built from local files (hack/kubelet/images.ts).
import * as fs from "node:fs";
import * as path from "node:path";
import { paths } from "../config";
import { corednsManifests } from "./coredns";
import { kubeProxyManifests } from "./kube-proxy";

export { COREFILE } from "./coredns";

type Kubectl = (...args: string[]) => string;

/** Every add-on object, as one List (kubectl apply -f). */
export function addonManifests(): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "List",
    items: [...kubeProxyManifests(), ...corednsManifests()],
  };
}

/** Applies the add-ons and waits until kube-proxy runs on every node and CoreDNS is available. */
export function installAddons(
  kubectl: Kubectl,
  log: (msg: string) => void,
  timeoutSeconds = 180,
): void {
  const file = path.join(paths.state, "addons.json");
  fs.writeFileSync(file, JSON.stringify(addonManifests(), null, 2) + "\n");
  kubectl("apply", "-f", file);
  const wait = (what: string) => {
    try {
      kubectl("-n", "kube-system", "rollout", "status", what, `--timeout=${timeoutSeconds}s`);
    } catch (e) {
      const pods = kubectl("-n", "kube-system", "get", "pods", "-o", "wide");
      throw new Error(
        `${what} did not become ready in ${timeoutSeconds}s (see the kubelet and container logs ` +
          `under ${paths.nodes}/<node>/): ${String(e)}\n${pods}`,
      );
    }
  };
  log("waiting for kube-proxy on every node");
  wait("daemonset/kube-proxy");
  log("waiting for CoreDNS (kube-dns)");
  wait("deployment/coredns");
}
