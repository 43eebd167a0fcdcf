// The kubelet runtime of the local cluster (`hack/cluster.sh up`): on each node a
// containerd (Debian's, with runc) and a real kubelet v1.34.
//
// Per node, everything in the node's network namespace (nsenter --net only: containerd, the kubelet
// and the volumes the kubelet mounts must share the host's mount namespace, which `ip netns exec`
// would not give them):
//   containerd  own root, state and socket in /var/lib/pmv-kubelet/<node> (logs in the cluster's
//               nodes/<node>/), CRI with CNI conf dir = the node's net.d (Multus first, the cluster
//               bridge for eth0), pod netns under its state dir, oom_score_adj clamped (no
//               CAP_SYS_RESOURCE in this sandbox)
//   kubelet     own root dir and pod log dir there too, cgroupfs driver with cgroupRoot /<node>
//               (cgroup v1 is allowed with failCgroupV1: false), serving on <node IP>:10250
//   kube-proxy  (a DaemonSet, hack/cluster/addons) writes the node netns's Service rules
// `down` (stopKubeletNodes) stops the kubelets, kills what runs in the nodes' cgroups, stops
// containerd and its shims, unmounts what they mounted and removes the cgroups.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import {
  CLUSTER_DOMAIN,
  DNS_SERVICE_IP,
  GW_IP,
  NodeSpec,
  bin,
  cniBinDir,
  nodePaths,
  paths,
} from "../cluster/config";
import {
  ProcRecord,
  isAlive,
  procStartTime,
  readJson,
  readProcRecords,
  run,
  runAsync,
  runOk,
  startDaemon,
  stopProcess,
  writeJsonAtomic,
} from "../cluster/proc";
import {
  CGROUP_ROOT_FS,
  CRI_NAMESPACE,
  KUBELET_HEALTHZ_PORT,
  KUBELET_MAX_PODS,
  KUBELET_PACKAGES,
  KUBELET_PORT,
  KUBELET_STATE,
  KubeletNodePaths,
  PAUSE_IMAGE,
  containerdRecord,
  kubeletNodePaths,
  kubeletRecord,
} from "./config";
import { IMAGE_NAMES, ImageName, buildImages } from "./images";
import { kubeletServingCert, pki } from "../cluster/controlplane";
import type { ImageArchive } from "./oci";

export type Log = (msg: string) => void;

/** Host directories used by every containerd (shim sockets) and by libcni (result cache). */
const HOST_DIRS = ["/var/lib/cni/results", "/var/lib/cni", "/run/containerd/s", "/run/containerd"];
/** Host files the kubelets create: kube-proxy's iptables lock (a hostPath, FileOrCreate). */
const HOST_FILES = ["/run/xtables.lock"];
const HOST_DIRS_RECORD = () => path.join(KUBELET_STATE, "created-host-dirs.json");

const sleep = (ms: number) => new Promise<void>(r => setTimeout(r, ms));
const have = (cmd: string) => run("bash", ["-c", `command -v ${cmd}`]).code === 0;

// ---- prerequisites ----------------------------------------------------------------------------

/** Installs containerd, runc and iptables from Debian when missing. */
export function ensureKubeletPackages(log: Log): void {
  const missing = KUBELET_PACKAGES.filter(p => !have(p.cmd));
  if (!missing.length) return;
  const pkgs = [...new Set(missing.map(p => p.pkg))];
  log(`installing missing Debian packages for the kubelet runtime: ${pkgs.join(" ")}`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  if (spawnSync("apt-get", ["update", "-qq"], { stdio: "inherit", env }).status !== 0)
    throw new Error("apt-get update failed");
  const inst = spawnSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...pkgs], {
    stdio: "inherit",
    env,
  });
  if (inst.status !== 0) throw new Error(`apt-get install ${pkgs.join(" ")} failed`);
}

/** Images imported into every node: PMV_KUBELET_IMAGES=busybox limits the set (to it, pause and the add-ons). */
export function kubeletImageNames(): ImageName[] {
  const env = process.env.PMV_KUBELET_IMAGES;
  if (!env) return [...IMAGE_NAMES];
  const names = env.split(",").map(s => s.trim());
  for (const n of names)
    if (!(IMAGE_NAMES as readonly string[]).includes(n))
      throw new Error(`PMV_KUBELET_IMAGES: unknown image ${n} (${IMAGE_NAMES.join(", ")})`);
  // The sandbox and the add-ons `up` installs are always needed.
  for (const must of ["coredns", "kube-proxy", "pause"])
    if (!names.includes(must)) names.unshift(must);
  return names as ImageName[];
}

/** Everything `up` needs before the nodes start: packages, kubelet, images. */
export function prepareKubeletRuntime(log: Log): ImageArchive[] {
  ensureKubeletPackages(log);
  if (!fs.existsSync(bin("kubelet")))
    throw new Error(
      `missing kubelet in ${path.dirname(bin("kubelet"))}: run hack/build-binaries.sh`,
    );
  if (!fs.existsSync(CGROUP_ROOT_FS)) throw new Error(`no cgroup filesystem at ${CGROUP_ROOT_FS}`);
  const t0 = Date.now();
  const archives = buildImages(kubeletImageNames(), log);
  log(
    `images ready (${archives.map(a => a.name).join(", ")}) in ${((Date.now() - t0) / 1000).toFixed(1)}s`,
  );
  return archives;
}

// ---- cgroups ----------------------------------------------------------------------------------

interface MountEntry {
  mountPoint: string;
  fsType: string;
  superOptions: string;
}

const unescapeMount = (s: string) =>
  s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Mounts of this process's mount namespace (the host's), from /proc/self/mountinfo. */
export function mounts(): MountEntry[] {
  return fs
    .readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter(Boolean)
    .map(line => {
      const [left, right] = line.split(" - ");
      const f = left.split(" ");
      const r = (right ?? "").split(" ");
      return { mountPoint: unescapeMount(f[4]), fsType: r[0], superOptions: r[2] ?? "" };
    });
}

/** Mount points of every cgroup hierarchy: v1 ones and, on hybrid hosts, the v2 "unified" one. */
export function cgroupMounts(): string[] {
  const under = (p: string) => p === CGROUP_ROOT_FS || p.startsWith(`${CGROUP_ROOT_FS}/`);
  return [
    ...new Set(
      mounts()
        .filter(m => under(m.mountPoint) && (m.fsType === "cgroup" || m.fsType === "cgroup2"))
        .map(m => m.mountPoint),
    ),
  ];
}

/**
 * Hierarchies the node's cgroup is created in: the v1 ones (cpu, memory, …, name=systemd) when
 * there are any, else the v2 one. runc and the kubelet also make their cgroups in a hybrid host's
 * v2 "unified" hierarchy by themselves; teardown covers every hierarchy (cgroupMounts).
 */
export function cgroupHierarchies(): string[] {
  const all = mounts().filter(m => cgroupMounts().includes(m.mountPoint));
  const v1 = all.filter(m => m.fsType === "cgroup").map(m => m.mountPoint);
  return v1.length ? [...new Set(v1)] : all.map(m => m.mountPoint);
}

/** Creates the node's cgroup (kubelet cgroupRoot) in every hierarchy; cpuset needs cpus and mems. */
function makeNodeCgroups(kp: KubeletNodePaths): void {
  for (const h of cgroupHierarchies()) {
    const dir = path.join(h, kp.cgroupRoot);
    fs.mkdirSync(dir, { recursive: true });
    for (const f of ["cpuset.cpus", "cpuset.mems"]) {
      const parent = path.join(h, f);
      const mine = path.join(dir, f);
      if (fs.existsSync(parent) && fs.existsSync(mine) && !fs.readFileSync(mine, "utf8").trim())
        fs.writeFileSync(mine, fs.readFileSync(parent, "utf8").trim());
    }
  }
}

/** Every cgroup directory of the node (its cgroup root and below), deepest first, in all hierarchies. */
function nodeCgroupDirs(kp: KubeletNodePaths): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) walk(path.join(dir, e.name));
    out.push(dir);
  };
  for (const h of cgroupMounts()) {
    const root = path.join(h, kp.cgroupRoot);
    if (fs.existsSync(root)) walk(root);
  }
  return out;
}

function cgroupPids(dirs: string[]): number[] {
  const pids = new Set<number>();
  for (const d of dirs) {
    try {
      for (const l of fs.readFileSync(path.join(d, "cgroup.procs"), "utf8").split("\n"))
        if (l.trim()) pids.add(Number(l));
    } catch {
      /* gone */
    }
  }
  return [...pids];
}

// ---- per-node files ---------------------------------------------------------------------------

/**
 * The Multus wrapper containerd runs (as `multus` in the node's CNI bin dir): runs the real thin
 * plugin, then names the pod's network namespace (/run/netns/pmv-pod-<pod uid>), so
 * `cluster exec <namespace>/<pod>` and the test helpers can run host tools inside it.
 */
export function multusWrapper(realMultus: string): string {
  return `#!/bin/bash
# Multus as containerd runs it on a kubelet node of the local cluster (generated by
# hack/kubelet/runtime.ts): the real thin plugin, then /run/netns/pmv-pod-<pod uid> is bound to
# the pod's network namespace on ADD and removed on DEL.
set -u
uid=""
IFS=';' read -ra kv <<< "\${CNI_ARGS:-}"
for x in "\${kv[@]}"; do
  case $x in K8S_POD_UID=*) uid=\${x#K8S_POD_UID=} ;; esac
done
alias=""
[[ $uid =~ ^[0-9a-f-]+$ ]] && alias=/run/netns/pmv-pod-$uid
out=$(${JSON.stringify(realMultus)})
rc=$?
ino() { stat -L -c %i "$1" 2>/dev/null; }
case \${CNI_COMMAND:-} in
  ADD)
    if [[ $rc == 0 && -n $alias && -n \${CNI_NETNS:-} ]]; then
      if mountpoint -q "$alias"; then umount "$alias" 2>/dev/null; fi
      { mkdir -p /run/netns && touch "$alias" && mount --bind "$CNI_NETNS" "$alias"; } >&2 ||
        echo "pmv: could not bind $CNI_NETNS to $alias" >&2
    fi ;;
  DEL)
    if [[ -n $alias ]] && mountpoint -q "$alias"; then
      if [[ -z \${CNI_NETNS:-} || ! -e \${CNI_NETNS:-} || "$(ino "$alias")" == "$(ino "$CNI_NETNS")" ]]; then
        umount "$alias" 2>/dev/null; rm -f "$alias"
      fi
    fi ;;
esac
printf '%s' "$out"
exit $rc
`;
}

export function containerdConfig(n: NodeSpec, kp: KubeletNodePaths): string {
  const q = (s: string) => JSON.stringify(s);
  const cri = `plugins."io.containerd.grpc.v1.cri"`;
  return `# containerd for ${n.name} (generated by hack/kubelet/runtime.ts)
version = 2
root = ${q(kp.containerdRoot)}
state = ${q(kp.containerdState)}
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = ${q(kp.containerdSock)}
[ttrpc]
  address = ${q(`${kp.containerdSock}.ttrpc`)}
[debug]
  address = ""
  level = "info"
[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = ${q(path.join(kp.containerdRoot, "opt"))}
  [${cri}]
    sandbox_image = ${q(PAUSE_IMAGE)}
    # Pod network namespaces below the state dir, not in /run/netns with everyone else's.
    netns_mounts_under_state_dir = true
    # No CAP_SYS_RESOURCE here: oom_score_adj can only go up (runc fails on -998 otherwise).
    restrict_oom_score_adj = true
    disable_apparmor = true
    enable_selinux = false
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    [${cri}.cni]
      bin_dir = ${q(kp.cniBin)}
      conf_dir = ${q(nodePaths(n.name).netd)}
      max_conf_num = 1
    [${cri}.containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [${cri}.containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [${cri}.containerd.runtimes.runc.options]
          BinaryName = ${q(fs.realpathSync(runOk("bash", ["-c", "command -v runc"]).trim()))}
          Root = ${q(path.join(kp.containerdState, "runc"))}
          SystemdCgroup = false
    [${cri}.registry]
      config_path = ""
`;
}

export function kubeletConfig(n: NodeSpec, kp: KubeletNodePaths): Record<string, unknown> {
  return {
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    // cgroup v1 on this machine: kubelet 1.34 refuses it unless told otherwise.
    failCgroupV1: false,
    cgroupDriver: "cgroupfs",
    cgroupRoot: kp.cgroupRoot,
    cgroupsPerQOS: true,
    enforceNodeAllocatable: ["pods"],
    containerRuntimeEndpoint: `unix://${kp.containerdSock}`,
    address: n.ip,
    port: KUBELET_PORT,
    readOnlyPort: 0,
    healthzBindAddress: "127.0.0.1",
    healthzPort: KUBELET_HEALTHZ_PORT,
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: path.join(paths.pki, "ca.crt") },
    },
    authorization: { mode: "Webhook" },
    // Serving certificate signed by the cluster CA for the node IP: the API server verifies it
    // (--kubelet-certificate-authority) when it proxies logs, exec and port-forward.
    tlsCertFile: pki().file(`${kubeletServingCert(n)}.crt`),
    tlsPrivateKeyFile: pki().file(`${kubeletServingCert(n)}.key`),
    // CoreDNS behind the kube-dns Service (hack/cluster/addons).
    clusterDNS: [DNS_SERVICE_IP],
    clusterDomain: CLUSTER_DOMAIN,
    // What dnsPolicy Default pods (CoreDNS itself) get, instead of the host's resolver.
    resolvConf: kp.resolvConf,
    failSwapOn: false,
    podLogsDir: kp.podLogs,
    maxPods: KUBELET_MAX_PODS,
    // The nodes share the machine's disk and memory: evict only when it is really short.
    evictionHard: {
      "memory.available": "100Mi",
      "nodefs.available": "1%",
      "nodefs.inodesFree": "1%",
      "imagefs.available": "1%",
    },
    // Imported images cannot be pulled again: never garbage-collect them.
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    serializeImagePulls: false,
    rotateCertificates: false,
    shutdownGracePeriod: "0s",
    logging: { format: "text" },
  };
}

// ---- start ------------------------------------------------------------------------------------

/** Waits until a node's containerd answers on its socket. */
async function waitContainerd(kp: KubeletNodePaths, rec: ProcRecord, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(rec)) throw new Error(`containerd exited; see ${kp.containerdLog}`);
    if (fs.existsSync(kp.containerdSock)) {
      const r = await runAsync("ctr", ["--address", kp.containerdSock, "version"], {
        timeoutMs: 5000,
      });
      if (r.code === 0) return;
    }
    await sleep(200);
  }
  throw new Error(`containerd not answering on ${kp.containerdSock} after ${timeoutMs / 1000}s`);
}

/** Starts containerd and the kubelet of one node (its network namespace and Node object exist). */
export async function startKubeletNode(
  n: NodeSpec,
  images: ImageArchive[],
  log: Log,
): Promise<void> {
  const kp = kubeletNodePaths(n.name);
  const longest = path.join(kp.kubeletRoot, "device-plugins", "kubelet.sock");
  if (`${kp.containerdSock}.ttrpc`.length > 107 || longest.length > 107)
    throw new Error(`unix socket paths too long below ${kp.dir}: set PMV_KUBELET_DIR shorter`);
  for (const d of [
    kp.dir,
    kp.containerdRoot,
    kp.containerdState,
    kp.cniBin,
    kp.kubeletRoot,
    kp.podLogs,
  ])
    fs.mkdirSync(d, { recursive: true });
  makeNodeCgroups(kp);

  // CNI binaries: the standard plugins, and Multus behind the netns-naming wrapper.
  for (const f of fs.readdirSync(cniBinDir())) {
    const link = path.join(kp.cniBin, f);
    if (!fs.existsSync(link)) fs.symlinkSync(path.join(cniBinDir(), f), link);
  }
  fs.writeFileSync(path.join(kp.cniBin, "multus"), multusWrapper(bin("multus")), { mode: 0o755 });
  // The node's resolver, for dnsPolicy Default pods (CoreDNS): the LAN router, which has no DNS
  // server, so CoreDNS answers for the cluster zones only.
  fs.writeFileSync(
    kp.resolvConf,
    `# the node's resolver (no DNS server on the LAN)\nnameserver ${GW_IP}\n`,
  );

  fs.writeFileSync(kp.containerdConfig, containerdConfig(n, kp));
  const containerd = startDaemon({
    name: containerdRecord(n.name),
    cmd: "nsenter",
    args: [`--net=/run/netns/${n.name}`, "--", "containerd", "--config", kp.containerdConfig],
    log: kp.containerdLog,
    recordDir: paths.procs,
  });
  await waitContainerd(kp, containerd);

  const t0 = Date.now();
  for (const a of images) {
    const r = await runAsync(
      "ctr",
      // Unpacked on first use (the CRI plugin unpacks an image when it creates a container).
      [
        "--address",
        kp.containerdSock,
        "--namespace",
        CRI_NAMESPACE,
        "images",
        "import",
        "--no-unpack",
        a.file,
      ],
      { timeoutMs: 300000 },
    );
    if (r.code !== 0)
      throw new Error(`${n.name}: importing ${a.name} failed: ${(r.stderr || r.stdout).trim()}`);
  }
  log(`${n.name}: containerd up, images imported in ${((Date.now() - t0) / 1000).toFixed(1)}s`);

  fs.writeFileSync(kp.kubeletConfig, JSON.stringify(kubeletConfig(n, kp), null, 2) + "\n");
  startDaemon({
    name: kubeletRecord(n.name),
    cmd: "nsenter",
    args: [
      `--net=/run/netns/${n.name}`,
      "--",
      bin("kubelet"),
      `--config=${kp.kubeletConfig}`,
      `--kubeconfig=${nodePaths(n.name).kubeconfig}`,
      `--root-dir=${kp.kubeletRoot}`,
      `--hostname-override=${n.name}`,
      `--node-ip=${n.ip}`,
      "--v=1",
    ],
    log: kp.kubeletLog,
    recordDir: paths.procs,
  });
}

/** Starts every node's kubelet runtime (nodes in parallel). */
export async function startKubeletNodes(
  nodes: NodeSpec[],
  images: ImageArchive[],
  log: Log,
): Promise<void> {
  // Host directories containerd and libcni create on first use; `down` removes those that did
  // not exist before (once they are empty).
  const created = [...HOST_DIRS, ...HOST_FILES].filter(d => !fs.existsSync(d));
  if (!fs.existsSync(KUBELET_STATE)) created.push(KUBELET_STATE);
  fs.mkdirSync(KUBELET_STATE, { recursive: true });
  writeJsonAtomic(HOST_DIRS_RECORD(), created);
  await Promise.all(nodes.map(n => startKubeletNode(n, images, log)));
}

// ---- stop -------------------------------------------------------------------------------------

/** Nodes of the current state directory that ran the kubelet runtime. */
function kubeletNodes(): string[] {
  try {
    return fs
      .readdirSync(KUBELET_STATE, { withFileTypes: true })
      .filter(e => e.isDirectory())
      .map(e => e.name)
      .sort();
  } catch {
    return [];
  }
}

/** Processes whose command line has an argument that names something below `dir`. */
function pidsWithArgBelow(dir: string, exe: string): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    let argv: string[];
    try {
      argv = fs.readFileSync(`/proc/${e}/cmdline`, "utf8").split("\0");
    } catch {
      continue;
    }
    if (path.basename(argv[0] ?? "") !== exe) continue;
    if (argv.some(a => a.includes(`${dir}/`))) out.push(Number(e));
  }
  return out;
}

/** containerd-shim-runc-v2 processes serving this containerd (matched by its socket). */
function shimPids(sock: string): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    let argv: string[];
    try {
      argv = fs.readFileSync(`/proc/${e}/cmdline`, "utf8").split("\0");
    } catch {
      continue;
    }
    if (!path.basename(argv[0] ?? "").startsWith("containerd-shim")) continue;
    const i = argv.indexOf("-address");
    if (i !== -1 && argv[i + 1] === sock) out.push(Number(e));
  }
  return out;
}

function listDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

function rmdirIfEmpty(dir: string): void {
  try {
    fs.rmdirSync(dir);
  } catch {
    /* not empty or gone */
  }
}

/** SIGKILLs processes we found (in the node's cgroups); a pid that exited is skipped. */
function killPids(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* already gone */
    }
  }
}

/** SIGTERM, then SIGKILL after a grace period, for processes identified by pid right now. */
async function stopPids(pids: number[], graceMs = 2000): Promise<void> {
  await Promise.all(
    pids.map(pid => {
      const startTime = procStartTime(pid);
      return startTime
        ? stopProcess({ name: String(pid), pid, startTime, argv: [], group: false }, graceMs)
        : false;
    }),
  );
}

/**
 * Stops one node's kubelet runtime and removes what it left on the machine: kubelet, every
 * process in the node's cgroups (containers, pause), containerd and its shims, the mounts below
 * the node's directory (overlay rootfs, shm, netns, kubelet volumes), the cgroups, libcni's cache
 * entries and the shims' sockets. Returns what could not be cleaned.
 */
export async function stopKubeletNode(node: string, log: Log): Promise<string[]> {
  const kp = kubeletNodePaths(node);
  const errors: string[] = [];
  const records = readProcRecords(paths.procs);
  const rec = (name: string) => records.find(r => r.name === name);

  const kubelet = rec(kubeletRecord(node));
  if (kubelet && (await stopProcess(kubelet, 5000))) log(`stopped kubelet on ${node}`);
  // Without records (a state directory removed by hand): by the paths on their command lines.
  const strayKubelets = pidsWithArgBelow(kp.dir, "kubelet");
  if (strayKubelets.length) {
    await stopPids(strayKubelets, 5000);
    log(`stopped unrecorded kubelet(s) of ${node}: ${strayKubelets.join(" ")}`);
  }

  const sandboxes = listDir(
    path.join(kp.containerdState, "io.containerd.grpc.v1.cri", "sandboxes"),
  );
  const tasks = listDir(
    path.join(kp.containerdState, "io.containerd.runtime.v2.task", CRI_NAMESPACE),
  );

  // Containers and sandboxes: everything in the node's cgroups.
  for (let i = 0; i < 20; i++) {
    const pids = cgroupPids(nodeCgroupDirs(kp));
    if (!pids.length) break;
    if (i === 0) log(`killing ${pids.length} container process(es) on ${node}`);
    killPids(pids);
    await sleep(100);
  }

  const containerd = rec(containerdRecord(node));
  if (containerd && (await stopProcess(containerd, 5000))) log(`stopped containerd on ${node}`);
  const strayContainerd = pidsWithArgBelow(kp.dir, "containerd");
  if (strayContainerd.length) {
    await stopPids(strayContainerd, 5000);
    log(`stopped unrecorded containerd(s) of ${node}: ${strayContainerd.join(" ")}`);
  }
  const shims = shimPids(kp.containerdSock);
  if (shims.length) {
    await stopPids(shims);
    log(`stopped ${shims.length} containerd shim(s) of ${node}`);
  }

  // Mounts below the node's directory, deepest first (kubelet's root dir is itself a bind mount).
  const below = (p: string) => p === kp.dir || p.startsWith(`${kp.dir}/`);
  for (let pass = 0; pass < 3; pass++) {
    const ms = mounts()
      .map(m => m.mountPoint)
      .filter(below)
      .sort((a, b) => b.length - a.length);
    if (!ms.length) break;
    for (const m of ms) if (run("umount", [m]).code !== 0) run("umount", ["-l", m]);
  }
  const left = mounts().filter(m => below(m.mountPoint));
  if (left.length) errors.push(`${node}: mounts left: ${left.map(m => m.mountPoint).join(" ")}`);

  // cgroups (rmdir fails while a dying process is still in one: retry a little).
  for (let i = 0; i < 30; i++) {
    const dirs = nodeCgroupDirs(kp);
    if (!dirs.length) break;
    for (const d of dirs) rmdirIfEmpty(d);
    if (nodeCgroupDirs(kp).length) await sleep(100);
  }
  const cg = nodeCgroupDirs(kp);
  if (cg.length) errors.push(`${node}: cgroups left: ${cg.join(" ")}`);

  // Host-wide leftovers keyed by our ids: libcni's result cache (containerd's go-cni keeps it in
  // /var/lib/cni) and the shims' sockets in /run/containerd/s (named by a hash of our address).
  const ids = new Set([...sandboxes, ...tasks]);
  const cniResults = "/var/lib/cni/results";
  for (const f of listDir(cniResults))
    if ([...ids].some(id => f.includes(id))) fs.rmSync(path.join(cniResults, f), { force: true });
  for (const id of ids) {
    const h = createHash("sha256")
      .update(path.join(kp.containerdSock, CRI_NAMESPACE, id))
      .digest("hex");
    fs.rmSync(path.join("/run/containerd/s", h), { force: true });
  }
  // The node's state (content store, snapshots, kubelet root): only once nothing is mounted.
  if (!left.length) fs.rmSync(kp.dir, { recursive: true, force: true });

  for (const r of [kubelet, containerd])
    if (r && isAlive(r)) errors.push(`${node}: ${r.name} (pid ${r.pid}) still running`);
  const strays = [
    ...pidsWithArgBelow(kp.dir, "kubelet"),
    ...pidsWithArgBelow(kp.dir, "containerd"),
  ];
  if (strays.length) errors.push(`${node}: kubelet/containerd still running: ${strays.join(" ")}`);
  const stray = shimPids(kp.containerdSock);
  if (stray.length) errors.push(`${node}: containerd shims still running: ${stray.join(" ")}`);
  return errors;
}

/** Stops the kubelet runtime of every node (for `down`); returns what could not be cleaned. */
export async function stopKubeletNodes(log: Log): Promise<string[]> {
  const errors: string[] = [];
  const nodes = kubeletNodes();
  for (const node of nodes) errors.push(...(await stopKubeletNode(node, log)));
  if (!fs.existsSync(KUBELET_STATE)) return errors;
  const created = readJson<string[]>(HOST_DIRS_RECORD()) ?? [];
  fs.rmSync(HOST_DIRS_RECORD(), { force: true });
  for (const d of [...HOST_DIRS, KUBELET_STATE]) if (created.includes(d)) rmdirIfEmpty(d);
  for (const f of HOST_FILES) if (created.includes(f)) fs.rmSync(f, { force: true });
  if (nodes.length) log(`removed the kubelet runtime's state in ${KUBELET_STATE}`);
  return errors;
}
