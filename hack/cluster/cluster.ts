// up / down / status / exec of the local cluster (the logic behind hack/cluster.sh).
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import {
  API_PORT,
  API_SERVER,
  ClusterInfo,
  DEFAULT_NODES,
  ETCD_CLIENT_PORT,
  ETCD_PEER_PORT,
  GW_NETNS,
  HOST_LINK,
  KCM_PORT,
  LAN_NETNS,
  MAX_NODES,
  NETNS_PREFIX,
  NodeSpec,
  POD_NETNS_PREFIX,
  REPO_ROOT,
  SCHEDULER_PORT,
  binDir,
  nodeSpec,
  paths,
  podNetns,
} from "./config";
import {
  adminKube,
  apiserverReady,
  etcdHealthy,
  kcmHealthy,
  makePki,
  schedulerHealthy,
  startApiserver,
  startControllerManager,
  startEtcd,
  startScheduler,
  tail,
  waitHealthy,
} from "./controlplane";
import { writeCniConfig } from "./cni-config";
import { installAddons } from "./addons";
import { Kube, KubeList, isAlreadyExists, sleep } from "./kube";
import { clusterNetns, linkExists, netnsExists, setupLan, teardownLan } from "./network";
import {
  ProcRecord,
  isAlive,
  netnsInode,
  pidsInNetns,
  procRssKiB,
  procStartTime,
  readJson,
  readProcRecords,
  run,
  runOk,
  stopProcess,
  writeJsonAtomic,
} from "./proc";
import { prepareKubeletRuntime, startKubeletNodes, stopKubeletNodes } from "../kubelet/runtime";
import { kubeletNodePaths } from "../kubelet/config";

const t0 = Date.now();
export function say(msg: string): void {
  const s = ((Date.now() - t0) / 1000).toFixed(1).padStart(5);
  console.log(`\x1b[1m[cluster ${s}s]\x1b[0m ${msg}`);
}

// ---- machine-wide operation lock (netns names are global) ------------------------------------

const LOCK_DIR = "/run/lock/pepr-macvlan-cluster";

interface LockOwner {
  pid: number;
  startTime: string;
  what: string;
}

/**
 * Takes a machine-wide lock (a directory, created atomically). A lock whose owner process is gone
 * is taken over. Returns a release function.
 */
export async function acquireLock(
  name: string,
  what: string,
  timeoutMs = 30 * 60 * 1000,
): Promise<() => void> {
  const dir = `${LOCK_DIR}.${name}`;
  const me: LockOwner = { pid: process.pid, startTime: procStartTime(process.pid) ?? "", what };
  const deadline = Date.now() + timeoutMs;
  let told = false;
  for (;;) {
    try {
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, "owner.json"), JSON.stringify(me));
      return () => {
        const o = readJson<LockOwner>(path.join(dir, "owner.json"));
        if (o?.pid === me.pid) fs.rmSync(dir, { recursive: true, force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const owner = readJson<LockOwner>(path.join(dir, "owner.json"));
    if (owner && owner.pid === me.pid && owner.startTime === me.startTime) return () => undefined;
    if (!owner || !isAlive(owner)) {
      // stale (or being written right now: give it a moment before taking over)
      await sleep(200);
      const again = readJson<LockOwner>(path.join(dir, "owner.json"));
      if (!again || !isAlive(again)) {
        fs.rmSync(dir, { recursive: true, force: true });
        continue;
      }
    }
    if (Date.now() > deadline)
      throw new Error(`lock ${dir} held by pid ${owner?.pid} (${owner?.what})`);
    if (!told) {
      say(`waiting for lock ${dir} (held by pid ${owner?.pid}: ${owner?.what})`);
      told = true;
    }
    await sleep(500);
  }
}

/** Parent pid of a process, from /proc/<pid>/stat (0 if unknown). */
function parentPid(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) || 0;
  } catch {
    return 0;
  }
}

/**
 * The owner of the integration tests' session lock, if a live process other than one of our
 * ancestors holds it: the cluster is then in use by a test run and must not be replaced.
 */
export function sessionOwner(): LockOwner | undefined {
  const owner = readJson<LockOwner>(path.join(`${LOCK_DIR}.session`, "owner.json"));
  if (!owner || !isAlive(owner)) return undefined;
  for (let p = process.pid; p > 1; p = parentPid(p)) if (p === owner.pid) return undefined;
  return owner;
}

/** Waits while integration tests use the cluster (up), or refuses (down) unless forced. */
async function respectSession(op: "up" | "down", force: boolean): Promise<void> {
  let owner = sessionOwner();
  if (!owner || force) return;
  if (op === "down") {
    throw new Error(
      `the cluster is in use by ${owner.what}; it takes the cluster down itself. ` +
        "Pass --force to take it down anyway.",
    );
  }
  say(`the cluster is in use by ${owner.what}; waiting (or pass --force)`);
  while ((owner = sessionOwner())) await sleep(1000);
}

// ---- prerequisites ---------------------------------------------------------------------------

const PACKAGES: Array<{ cmd: string; pkg: string; why: string }> = [
  { cmd: "ip", pkg: "iproute2", why: "network namespaces, links, routes" },
  { cmd: "nsenter", pkg: "util-linux", why: "running commands in network namespaces" },
  { cmd: "openssl", pkg: "openssl", why: "certificates" },
  { cmd: "tcpdump", pkg: "tcpdump", why: "debugging and tests" },
  { cmd: "busybox", pkg: "busybox-static", why: "ping, nc, httpd in test pods" },
  { cmd: "curl", pkg: "curl", why: "HTTP checks in tests" },
  { cmd: "ping", pkg: "iputils-ping", why: "the node agent's kernel tests" },
];

const have = (cmd: string) => run("bash", ["-c", `command -v ${cmd}`]).code === 0;

export function ensurePackages(): void {
  const missing = PACKAGES.filter(p => !have(p.cmd));
  if (!missing.length) return;
  const pkgs = missing.map(p => p.pkg);
  say(`installing missing Debian packages: ${pkgs.join(" ")}`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const upd = spawnSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
  if (upd.status !== 0) throw new Error("apt-get update failed");
  const inst = spawnSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...pkgs], {
    stdio: "inherit",
    env,
  });
  if (inst.status !== 0) throw new Error(`apt-get install ${pkgs.join(" ")} failed`);
}

export function buildBinaries(): void {
  const r = spawnSync("bash", [path.join(REPO_ROOT, "hack", "build-binaries.sh")], {
    stdio: "inherit",
  });
  if (r.status !== 0) throw new Error("hack/build-binaries.sh failed");
}

function portFree(port: number, host = "0.0.0.0"): Promise<boolean> {
  return new Promise(resolve => {
    const srv = net.createServer();
    srv.once("error", () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

// ---- up ---------------------------------------------------------------------------------------

export interface UpOptions {
  nodes?: number;
  /** Replace the cluster even if integration tests are using it. */
  force?: boolean;
  /** Skip hack/build-binaries.sh (the caller knows the binaries are there). */
  skipBuild?: boolean;
}

export function readClusterInfo(): ClusterInfo | undefined {
  return readJson<ClusterInfo>(paths.clusterJson);
}

export async function up(opts: UpOptions = {}): Promise<ClusterInfo> {
  const count = opts.nodes ?? DEFAULT_NODES;
  if (!Number.isInteger(count) || count < 1 || count > MAX_NODES) {
    throw new Error(`--nodes must be 1..${MAX_NODES}`);
  }
  await respectSession("up", !!opts.force);
  const release = await acquireLock("op", `up (pid ${process.pid})`);
  try {
    if (!opts.skipBuild) {
      say("binaries: hack/build-binaries.sh (cached binaries are reused)");
      buildBinaries();
    }
    for (const b of [
      "etcd",
      "kube-apiserver",
      "kube-controller-manager",
      "kube-scheduler",
      "kubectl",
      "multus",
      "cni/pepr-macvlan-reply",
    ]) {
      if (!fs.existsSync(path.join(binDir(), b)))
        throw new Error(`missing ${b} in ${binDir()}: run hack/build-binaries.sh`);
    }
    ensurePackages();
    const images = prepareKubeletRuntime(say);

    if (fs.existsSync(paths.state) || clusterNetns().length || linkExists(HOST_LINK)) {
      say("cleaning up what a previous cluster left behind");
      await downLocked(false);
    }
    for (const port of [API_PORT, ETCD_CLIENT_PORT, ETCD_PEER_PORT, KCM_PORT, SCHEDULER_PORT]) {
      if (!(await portFree(port))) throw new Error(`port ${port} is in use by another process`);
    }

    const nodes: NodeSpec[] = Array.from({ length: count }, (_, i) => nodeSpec(i + 1));
    for (const d of [paths.state, paths.logs, paths.procs, paths.nodes])
      fs.mkdirSync(d, { recursive: true });
    const info: ClusterInfo = {
      nodes,
      binDir: binDir(),
      createdAt: new Date().toISOString(),
      apiServer: API_SERVER,
    };
    writeJsonAtomic(paths.clusterJson, info);

    say("certificates and kubeconfigs (openssl, ECDSA P-256)");
    makePki(nodes);

    say(
      `network: LAN bridge in ${LAN_NETNS}, router ${GW_NETNS}, ${nodes.map(n => n.name).join(", ")}, ${HOST_LINK}`,
    );
    setupLan(nodes);

    say("etcd");
    const etcd = startEtcd();
    await waitHealthy(etcd, "etcd", etcdHealthy);

    say("kube-apiserver");
    const apiserver = startApiserver();
    await waitHealthy(apiserver, "kube-apiserver", apiserverReady, 180000);

    say("kube-controller-manager and kube-scheduler");
    const kcm = startControllerManager();
    const sched = startScheduler();
    await Promise.all([
      waitHealthy(kcm, "kube-controller-manager", kcmHealthy),
      waitHealthy(sched, "kube-scheduler", schedulerHealthy),
    ]);

    say("NetworkAttachmentDefinition CRD, Multus RBAC, Node objects");
    const kubectl = (...args: string[]) =>
      runOk(path.join(binDir(), "kubectl"), ["--kubeconfig", paths.kubeconfig, ...args]);
    kubectl("apply", "-f", paths.manifests);
    const kube = adminKube();
    try {
      for (const n of nodes) await createNode(kube, n);
      kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/network-attachment-definitions.k8s.cni.cncf.io",
      );

      say("CNI configuration, containerd and a kubelet per node");
      for (const n of nodes) writeCniConfig(n);
      await startKubeletNodes(nodes, images, say);
      say("waiting for the nodes to be Ready and the default ServiceAccount");
      await waitClusterReady(kube, nodes);
      say("add-ons: kube-proxy (iptables) and CoreDNS (kube-dns)");
      installAddons(kubectl, say);
    } finally {
      kube.close();
    }
    say(`cluster up in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
    printUsage(info);
    return info;
  } finally {
    release();
  }
}

async function createNode(kube: Kube, n: NodeSpec): Promise<void> {
  try {
    await kube.create("/api/v1/nodes", {
      apiVersion: "v1",
      kind: "Node",
      metadata: {
        name: n.name,
        labels: {
          "kubernetes.io/hostname": n.name,
          "kubernetes.io/os": "linux",
          "kubernetes.io/arch": "amd64",
        },
      },
      spec: { podCIDR: n.podCIDR, podCIDRs: [n.podCIDR] },
    });
  } catch (e) {
    if (!isAlreadyExists(e)) throw e;
  }
}

async function waitClusterReady(kube: Kube, nodes: NodeSpec[], timeoutMs = 120000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let why = "";
  while (Date.now() < deadline) {
    for (const rec of readProcRecords(paths.procs)) {
      if (!isAlive(rec))
        throw new Error(`${rec.name} exited; last lines of ${rec.log}:\n${tail(rec.log, 20)}`);
    }
    try {
      const list = await kube.get<KubeList>("/api/v1/nodes");
      const byName = new Map(list.items.map(x => [x.metadata.name, x]));
      const notReady = nodes.filter(n => {
        const node = byName.get(n.name);
        const conds = (node?.status?.conditions ?? []) as Array<{ type: string; status: string }>;
        const ready = conds.find(c => c.type === "Ready")?.status === "True";
        const taints = (node?.spec?.taints ?? []) as Array<{ key: string }>;
        const tainted = taints.some(t => t.key === "node.kubernetes.io/not-ready");
        return !ready || tainted;
      });
      const sa = await kube.getOrUndefined("/api/v1/namespaces/default/serviceaccounts/default");
      if (!notReady.length && sa) return;
      why = notReady.length
        ? `not ready: ${notReady.map(n => n.name).join(", ")}`
        : "no default ServiceAccount yet";
    } catch (e) {
      why = String(e);
    }
    await sleep(500);
  }
  throw new Error(`cluster not ready after ${timeoutMs / 1000}s (${why})`);
}

function printUsage(info: ClusterInfo): void {
  const rel =
    path.relative(process.env.PMV_CALLER_CWD ?? process.cwd(), paths.kubeconfig) ||
    paths.kubeconfig;
  const lines = [
    "",
    `  kubeconfig:  ${paths.kubeconfig}`,
    `               export KUBECONFIG=${rel}`,
    `  kubectl:     ${path.join(info.binDir, "kubectl")}`,
    `  apiserver:   ${API_SERVER} (also https://127.0.0.1:${API_PORT} from the host)`,
    `  nodes:       ${info.nodes.map(n => `${n.name} ${n.ip} pods ${n.podCIDR}`).join("; ")}`,
    "  LAN:         198.18.0.0/16 (router 198.18.0.1 in pmv-gw, host 198.18.0.2 on pmv-host)",
    "",
    "  npm run cluster -- status",
    "  npm run cluster -- exec <namespace>/<pod> -- <cmd...>   (in the pod's network namespace)",
    "  npm run cluster -- exec node/<node> -- <cmd...>         (in the node's network namespace)",
    "  npm run cluster -- down",
    "",
  ];
  console.log(lines.join("\n"));
}

// ---- down -------------------------------------------------------------------------------------

export async function down(verbose = true, force = false): Promise<void> {
  await respectSession("down", force);
  const release = await acquireLock("op", `down (pid ${process.pid})`);
  try {
    await downLocked(verbose);
  } finally {
    release();
  }
}

async function downLocked(verbose: boolean): Promise<void> {
  const log = (m: string) => verbose && say(m);
  // Kubelet runtime nodes first: kubelets, containers, containerd and shims, mounts, cgroups.
  const kubeletErrors = await stopKubeletNodes(log);
  const records = readProcRecords(paths.procs);
  const control = ["kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"]
    .map(n => records.find(r => r.name === n))
    .filter((r): r is ProcRecord => !!r);
  const others = records.filter(r => !control.includes(r));

  // 1. anything still inside our network namespaces (exec sessions, strays), 2. the control plane.
  const inodes = new Set(
    clusterNetns()
      .map(n => netnsInode(`/run/netns/${n}`))
      .filter((i): i is number => i !== undefined),
  );
  if (inodes.size) {
    for (const pid of pidsInNetns(inodes)) {
      const st = procStartTime(pid);
      if (!st) continue;
      const cmd = fs.existsSync(`/proc/${pid}/cmdline`)
        ? fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim()
        : "";
      if (await stopProcess({ name: cmd, pid, startTime: st, argv: [], group: false }, 2000)) {
        log(`stopped process ${pid} inside a cluster network namespace: ${cmd.slice(0, 100)}`);
      }
    }
  }
  for (const r of [...others, ...control])
    if (await stopProcess(r, 10000)) log(`stopped ${r.name} (pid ${r.pid})`);

  // Network: pod namespaces first, then nodes, router, LAN (its deletion removes pmv-host's peer).
  const all = clusterNetns();
  const order = [
    ...all.filter(n => n.startsWith(POD_NETNS_PREFIX)),
    ...all.filter(n => !n.startsWith(POD_NETNS_PREFIX) && n !== GW_NETNS && n !== LAN_NETNS),
    GW_NETNS,
    LAN_NETNS,
  ];
  const errors = [...kubeletErrors, ...teardownLan(order)];
  if (all.length) log(`removed network namespaces: ${all.join(" ")}`);

  if (fs.existsSync(paths.state)) {
    fs.rmSync(paths.state, { recursive: true, force: true });
    log(`removed ${paths.state}`);
  }

  // Verify.
  const leftNetns = clusterNetns();
  if (leftNetns.length) errors.push(`network namespaces left: ${leftNetns.join(" ")}`);
  if (linkExists(HOST_LINK)) errors.push(`link ${HOST_LINK} left`);
  const alive = [...records, ...control].filter(isAlive);
  if (alive.length)
    errors.push(`processes still running: ${alive.map(r => `${r.name}(${r.pid})`).join(" ")}`);
  if (errors.length) throw new Error(`down incomplete:\n  ${errors.join("\n  ")}`);
  log("cluster down");
}

// ---- status -----------------------------------------------------------------------------------

export async function status(): Promise<number> {
  const info = readClusterInfo();
  if (!info) {
    console.log(`no cluster (${paths.clusterJson} missing)`);
    const ns = clusterNetns();
    if (ns.length) console.log(`but network namespaces exist: ${ns.join(" ")} (run down)`);
    return 1;
  }
  console.log(`cluster created ${info.createdAt}, state in ${paths.state}`);
  console.log(`kubeconfig ${paths.kubeconfig}, apiserver ${info.apiServer}\n`);
  console.log("PROCESS".padEnd(34) + "PID".padStart(8) + "  STATE    RSS");
  let total = 0;
  let healthy = true;
  for (const r of readProcRecords(paths.procs).sort((a, b) => a.name.localeCompare(b.name))) {
    const ok = isAlive(r);
    healthy &&= ok;
    const rss = ok ? procRssKiB(r.pid) : 0;
    total += rss;
    console.log(
      `${r.name.padEnd(34)}${String(r.pid).padStart(8)}  ${(ok ? "running" : "DEAD").padEnd(8)} ${(rss / 1024).toFixed(0).padStart(4)} MiB`,
    );
  }
  console.log(
    `${"total".padEnd(34)}${"".padStart(8)}  ${"".padEnd(8)} ${(total / 1024).toFixed(0).padStart(4)} MiB\n`,
  );
  console.log(`network namespaces: ${clusterNetns().join(" ")}\n`);
  const kubectl = path.join(info.binDir, "kubectl");
  for (const args of [
    ["get", "nodes", "-o", "wide"],
    ["get", "pods", "-A", "-o", "wide"],
  ]) {
    const r = run(kubectl, ["--kubeconfig", paths.kubeconfig, "--request-timeout=5s", ...args]);
    console.log((r.stdout || r.stderr).trimEnd() + "\n");
    if (r.code !== 0) healthy = false;
  }
  return healthy ? 0 : 1;
}

// ---- exec / logs --------------------------------------------------------------------------------

export interface ExecTarget {
  netns: string;
  /** Node the pod runs on, for pods. */
  node?: string;
  pod?: {
    namespace: string;
    name: string;
    uid: string;
    hostNetwork: boolean;
    containers: string[];
  };
}

/** Resolves `node/<node>`, `netns/<pmv-…>` or `<namespace>/<pod>` to a network namespace. */
export async function resolveTarget(target: string): Promise<ExecTarget> {
  const info = readClusterInfo();
  if (!info) throw new Error("no cluster: run up first");
  const [kind, name, ...rest] = target.split("/");
  if (!kind || !name || rest.length)
    throw new Error(`bad target "${target}": want <namespace>/<pod> or node/<node>`);
  if (kind === "node") {
    const n = info.nodes.find(
      x => x.name === name || x.name === `pmv-node-${name}` || x.name === `pmv-${name}`,
    );
    if (!n)
      throw new Error(`unknown node ${name} (nodes: ${info.nodes.map(x => x.name).join(", ")})`);
    return { netns: n.name, node: n.name };
  }
  if (kind === "netns") {
    if (!name.startsWith(NETNS_PREFIX) || !netnsExists(name))
      throw new Error(`no cluster network namespace ${name}`);
    return { netns: name };
  }
  const kube = adminKube();
  try {
    const pod = await kube.get(`/api/v1/namespaces/${kind}/pods/${name}`);
    const uid = String(pod.metadata.uid);
    const hostNetwork = !!pod.spec.hostNetwork;
    const node = pod.spec.nodeName as string | undefined;
    if (!node) throw new Error(`pod ${target} is not scheduled yet`);
    const netns = hostNetwork ? node : podNetns(uid);
    if (!netnsExists(netns))
      throw new Error(`pod ${target} has no network namespace yet (${netns})`);
    const containers = (pod.spec.containers as { name: string }[]).map(x => x.name);
    return { netns, node, pod: { namespace: kind, name, uid, hostNetwork, containers } };
  } finally {
    kube.close();
  }
}

export async function execIn(target: string, cmd: string[]): Promise<number> {
  if (!cmd.length) throw new Error("nothing to run: exec <target> -- <cmd...>");
  const t = await resolveTarget(target);
  const r = spawnSync("ip", ["netns", "exec", t.netns, ...cmd], {
    stdio: "inherit",
    cwd: process.env.PMV_CALLER_CWD ?? process.cwd(),
  });
  if (r.error) throw r.error;
  return r.status ?? 128 + 9;
}

/**
 * A container's output as the kubelet wrote it (podLogsDir/<ns>_<pod>_<uid>/<container>/<n>.log,
 * CRI format "<time> <stream> <P|F> <text>"), the latest restart's, without the CRI prefixes.
 * The same text `kubectl logs` prints; read from the file so it works without the kubelet API.
 */
export function podLogText(
  node: string,
  pod: { namespace: string; name: string; uid: string },
  container: string,
): string | undefined {
  const dir = path.join(
    kubeletNodePaths(node).podLogs,
    `${pod.namespace}_${pod.name}_${pod.uid}`,
    container,
  );
  if (!fs.existsSync(dir)) return undefined;
  const latest = fs
    .readdirSync(dir)
    .filter(f => /^\d+\.log$/.test(f))
    .sort((x, y) => parseInt(y) - parseInt(x))[0];
  if (!latest) return undefined;
  let out = "";
  for (const line of fs.readFileSync(path.join(dir, latest), "utf8").split("\n")) {
    const m = /^\S+ (?:stdout|stderr) ([PF]) (.*)$/.exec(line);
    if (m) out += m[1] === "F" ? `${m[2]}\n` : m[2];
  }
  return out;
}

export async function logs(target: string, container?: string): Promise<number> {
  const t = await resolveTarget(target);
  if (!t.pod || !t.node) throw new Error("logs needs <namespace>/<pod>");
  const name = container ?? t.pod.containers[0];
  const text = podLogText(t.node, t.pod, name);
  if (text === undefined)
    throw new Error(
      `no log for ${target} container ${name} (containers: ${t.pod.containers.join(", ")})`,
    );
  process.stdout.write(text);
  return 0;
}
