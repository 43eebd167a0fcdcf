// Whereabouts v0.9.2 installed on the local kubelet cluster as its docs say (doc/crds/ of the module
// hack/build-peers.sh built): its CRDs; its ServiceAccount, ClusterRole, binding and cron ConfigMap
// and its DaemonSet from doc/crds/daemonset-install.yaml; the CNI binary on each node's CNI bin dir.
// Upstream publishes no image we can use here (no registry), so the DaemonSet runs an image built
// from the locally built reconciler alone (/ip-control-loop), and the parts its entrypoint script
// would do on each node (install-cni.sh: copy the binary, write whereabouts.conf and a kubeconfig
// with the ServiceAccount's token) are done by this file: the binary is already in the CNI bin dir
// (hack/build-peers.sh builds it next to the standard plugins, which every node links), the flat
// file and kubeconfig are written below .cluster/peer/ and named by the NAD's configuration_path.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseAllDocuments } from "yaml";
import { API_SERVER, REPO_ROOT, bin, cniBinDir, paths } from "../../hack/cluster/config";
import { importImages } from "../../hack/kubelet/images";
import { kubeletNodePaths } from "../../hack/kubelet/config";
import { addFile, writeImageArchive } from "../../hack/kubelet/oci";
import type { Cluster } from "../../test/integration/helpers";
import { LAN_CIDR, PeerOptions, pool } from "./config";

export const WB_IMAGE = "localhost/pmv-bench/whereabouts-controlloop:v0.9.2";
const WB_DIR = () => path.join(paths.state, "peer", "whereabouts.d");
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

/** The Whereabouts source tree hack/build-peers.sh copied (it holds doc/crds). */
export function whereaboutsSource(): string {
  return execFileSync("bash", [path.join(REPO_ROOT, "hack", "build-peers.sh"), "--print-dir"], {
    encoding: "utf8",
  }).trim();
}

/** An image with the reconciler only, cached next to the source; imported into every node. */
function controlloopImage(nodes: string[]): void {
  const out = path.join(path.dirname(whereaboutsSource()), "images", "whereabouts-controlloop.tar");
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const src = bin("whereabouts-controlloop");
  if (!fs.existsSync(out) || fs.statSync(out).mtimeMs < fs.statSync(src).mtimeMs)
    writeImageArchive(
      "whereabouts-controlloop",
      {
        refs: [WB_IMAGE],
        layers: [{ populate: root => addFile(root, src, "/ip-control-loop", 0o755) }],
        config: { Entrypoint: ["/ip-control-loop"] },
      },
      out,
    );
  const archive = {
    name: "whereabouts-controlloop",
    refs: [WB_IMAGE],
    file: out,
    digest: "",
    bytes: 0,
  };
  for (const n of nodes) importImages(kubeletNodePaths(n).containerdSock, [archive]);
}

/** The CNI binary where Multus looks for delegates, and linked into each node's CNI bin dir. */
function installCniBinary(nodes: string[]): void {
  const binary = path.join(cniBinDir(), "whereabouts");
  if (!fs.existsSync(binary)) throw new Error(`${binary} missing: run hack/build-peers.sh`);
  for (const n of nodes) {
    const link = path.join(kubeletNodePaths(n).cniBin, "whereabouts");
    if (!fs.existsSync(link)) fs.symlinkSync(binary, link);
  }
}

/** daemonset-install.yaml, with our image, the flat file from a Secret, no host /opt or /etc mounts. */
function manifests(src: string): Json[] {
  const docs = parseAllDocuments(
    fs.readFileSync(path.join(src, "doc", "crds", "daemonset-install.yaml"), "utf8"),
    { version: "1.1" }, // Kubernetes reads YAML 1.1: defaultMode 0744 is octal
  ).map(d => d.toJSON() as Json);
  for (const d of docs.filter(x => x?.kind === "DaemonSet")) {
    const spec = d.spec.template.spec;
    const ctr = spec.containers[0];
    ctr.image = WB_IMAGE;
    ctr.imagePullPolicy = "Never";
    ctr.command = ["/ip-control-loop"];
    ctr.args = ["-log-level", "debug"];
    ctr.volumeMounts = [
      { name: "whereabouts-flatfile", mountPath: "/host/etc/cni/net.d/whereabouts.d" },
      { name: "cron-scheduler-configmap", mountPath: "/cron-schedule" },
    ];
    spec.volumes = [
      { name: "whereabouts-flatfile", secret: { secretName: "whereabouts-flatfile" } },
      ...spec.volumes.filter((v: Json) => v.name === "cron-scheduler-configmap"),
    ];
  }
  return docs.filter(Boolean);
}

function kubeconfigWithToken(token: string): string {
  const ca = fs.readFileSync(path.join(paths.pki, "ca.crt")).toString("base64");
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      { name: "local", cluster: { server: API_SERVER, "certificate-authority-data": ca } },
    ],
    users: [{ name: "whereabouts", user: { token } }],
    contexts: [{ name: "whereabouts", context: { cluster: "local", user: "whereabouts" } }],
    "current-context": "whereabouts",
  });
}

/** CRDs, RBAC, the reconciler DaemonSet (one Ready pod per node), the CNI binary and its config. */
export async function installWhereabouts(c: Cluster): Promise<void> {
  const src = whereaboutsSource();
  const nodes = c.nodes.map(n => n.name);
  for (const f of ["ippools", "overlappingrangeipreservations", "nodeslicepools"])
    await c.kubectl([
      "apply",
      "-f",
      path.join(src, "doc", "crds", `whereabouts.cni.cncf.io_${f}.yaml`),
    ]);
  await c.kubectl([
    "wait",
    "--for=condition=Established",
    "--timeout=60s",
    "crd/ippools.whereabouts.cni.cncf.io",
  ]);
  installCniBinary(nodes);
  controlloopImage(nodes);
  const docs = manifests(src);
  await c.apply(docs.filter(d => d.kind !== "DaemonSet"));
  const token = (
    await c.kubectl(["-n", "kube-system", "create", "token", "whereabouts", "--duration=6h"])
  ).trim();
  const kubeconfig = kubeconfigWithToken(token);
  fs.mkdirSync(WB_DIR(), { recursive: true });
  const hostKubeconfig = path.join(WB_DIR(), "whereabouts.kubeconfig");
  fs.writeFileSync(hostKubeconfig, kubeconfig, { mode: 0o600 });
  const flat = (kc: string) =>
    JSON.stringify({
      datastore: "kubernetes",
      kubernetes: { kubeconfig: kc },
      reconciler_cron_expression: "30 4 * * *",
    });
  fs.writeFileSync(path.join(WB_DIR(), "whereabouts.conf"), flat(hostKubeconfig));
  await c.apply({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "whereabouts-flatfile", namespace: "kube-system" },
    stringData: {
      // The reconciler prefixes the kubeconfig path with its mount path (/host).
      "whereabouts.conf": flat("/etc/cni/net.d/whereabouts.d/whereabouts.kubeconfig"),
      "whereabouts.kubeconfig": kubeconfig,
    },
  });
  await c.apply(docs.filter(d => d.kind === "DaemonSet"));
  await c.kubectl(
    ["-n", "kube-system", "rollout", "status", "daemonset/whereabouts", "--timeout=180s"],
    {
      timeoutMs: 200_000,
    },
  );
}

/** The DaemonSet goes before the next set-up (its informers would keep working for nothing). */
export async function removeWhereaboutsReconciler(c: Cluster): Promise<void> {
  await c.kubectl(["-n", "kube-system", "delete", "daemonset", "whereabouts", "--wait=true"], {
    timeoutMs: 120_000,
  });
}

/** One NAD on the pool: macvlan on eth0, Whereabouts IPAM. */
export function whereaboutsNad(o: PeerOptions, namespace: string): Json {
  const p = pool(o);
  const config = {
    cniVersion: "0.3.1",
    name: "peer-whereabouts",
    type: "macvlan",
    master: "eth0",
    mode: "bridge",
    ipam: {
      type: "whereabouts",
      range: LAN_CIDR,
      range_start: p.first,
      range_end: p.last,
      configuration_path: path.join(WB_DIR(), "whereabouts.conf"),
    },
  };
  return {
    apiVersion: "k8s.cni.cncf.io/v1",
    kind: "NetworkAttachmentDefinition",
    metadata: { name: "peer-whereabouts", namespace },
    spec: { config: JSON.stringify(config) },
  };
}

/** Addresses Whereabouts still records: allocations in its IPPools, and its reservations. */
export async function whereaboutsHeld(c: Cluster): Promise<number> {
  const pools = await c.api.get("/apis/whereabouts.cni.cncf.io/v1alpha1/ippools");
  return (pools.items as Json[]).reduce(
    (s, p) => s + Object.keys(p.spec?.allocations ?? {}).length,
    0,
  );
}
