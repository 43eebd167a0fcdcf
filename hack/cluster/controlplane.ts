// Control plane in the host network namespace: etcd on loopback, kube-apiserver on 0.0.0.0:6443
// (reached by the nodes at 198.18.0.2 over pmv-host), kube-controller-manager and kube-scheduler.
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as path from "node:path";
import {
  API_PORT,
  API_SERVER,
  API_SERVICE_IP,
  CLUSTER_DOMAIN,
  CLUSTER_POD_CIDR,
  ETCD_CLIENT_PORT,
  ETCD_PEER_PORT,
  HOST_IP,
  KCM_PORT,
  NodeSpec,
  SCHEDULER_PORT,
  SERVICE_CIDR,
  bin,
  nodePaths,
  paths,
} from "./config";
import { Kube, sleep } from "./kube";
import { Pki, writeKubeconfig } from "./pki";
import { ProcRecord, isAlive, readJson, startDaemon, stopProcess } from "./proc";

export const pki = () => new Pki(paths.pki);
/** The API server's client certificate for kubelets, and the user it names. */
export const KUBELET_CLIENT_CERT = "apiserver-kubelet-client";
export const KUBELET_CLIENT_USER = "kube-apiserver-kubelet-client";
/** File stem (in the PKI directory) of a node's kubelet serving certificate. */
export const kubeletServingCert = (n: NodeSpec) => `kubelet-serving-${n.index}`;
const kubeconfigFile = (name: string) => path.join(paths.pki, `${name}.kubeconfig`);

/** Certificates, keys and kubeconfigs for every component and node. */
export function makePki(nodes: NodeSpec[]): void {
  const p = pki();
  p.ca("ca", "pmv-cluster-ca");
  p.ca("front-proxy-ca", "pmv-front-proxy-ca");
  p.issue("ca", {
    name: "apiserver",
    cn: "kube-apiserver",
    server: true,
    dns: [
      "localhost",
      "kubernetes",
      "kubernetes.default",
      "kubernetes.default.svc",
      `kubernetes.default.svc.${CLUSTER_DOMAIN}`,
    ],
    ips: ["127.0.0.1", HOST_IP, API_SERVICE_IP],
  });
  p.issue("front-proxy-ca", { name: "front-proxy-client", cn: "front-proxy-client", client: true });
  p.keyPair("sa");
  const ca = p.file("ca.crt");
  const client = (name: string, cn: string, orgs: string[], server: string, file: string) => {
    const kp = p.issue("ca", { name, cn, orgs, client: true });
    writeKubeconfig(file, { server, caFile: ca, user: cn, clientCert: kp });
  };
  const local = `https://127.0.0.1:${API_PORT}`;
  client("admin", "pmv-admin", ["system:masters"], API_SERVER, paths.kubeconfig);
  client(
    "controller-manager",
    "system:kube-controller-manager",
    [],
    local,
    kubeconfigFile("controller-manager"),
  );
  client("scheduler", "system:kube-scheduler", [], local, kubeconfigFile("scheduler"));
  const multus = p.issue("ca", { name: "multus", cn: "pmv:multus", client: true });
  // The API server's identity towards kubelets (logs, exec, port-forward, metrics), bound to
  // ClusterRole system:kubelet-api-admin by manifests/30-apiserver-kubelet-client.yaml.
  p.issue("ca", { name: KUBELET_CLIENT_CERT, cn: KUBELET_CLIENT_USER, client: true });
  for (const n of nodes) {
    const np = nodePaths(n.name);
    // Kubelet serving certificate: the API server checks it against the cluster CA and the node IP.
    p.issue("ca", {
      name: kubeletServingCert(n),
      cn: `system:node:${n.name}`,
      orgs: ["system:nodes"],
      server: true,
      dns: [n.name],
      ips: [n.ip],
    });
    client(`node-${n.index}`, `system:node:${n.name}`, ["system:nodes"], API_SERVER, np.kubeconfig);
    writeKubeconfig(np.multusKubeconfig, {
      server: API_SERVER,
      caFile: ca,
      user: "pmv:multus",
      clientCert: multus,
    });
  }
}

function daemon(name: string, cmd: string, args: string[]): ProcRecord {
  return startDaemon({
    name,
    cmd,
    args,
    log: path.join(paths.logs, `${name}.log`),
    recordDir: paths.procs,
  });
}

export function startEtcd(): ProcRecord {
  fs.mkdirSync(paths.etcdData, { recursive: true, mode: 0o700 });
  const client = `http://127.0.0.1:${ETCD_CLIENT_PORT}`;
  const peer = `http://127.0.0.1:${ETCD_PEER_PORT}`;
  return daemon("etcd", bin("etcd"), [
    "--name=pmv",
    `--data-dir=${paths.etcdData}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=pmv=${peer}`,
    "--initial-cluster-state=new",
    // A throwaway test cluster: durability is not worth the fsync latency.
    "--unsafe-no-fsync",
    "--log-level=warn",
    "--quota-backend-bytes=2147483648",
  ]);
}

export function startApiserver(): ProcRecord {
  const f = (n: string) => pki().file(n);
  return daemon("kube-apiserver", bin("kube-apiserver"), [
    `--etcd-servers=http://127.0.0.1:${ETCD_CLIENT_PORT}`,
    "--bind-address=0.0.0.0",
    `--secure-port=${API_PORT}`,
    `--advertise-address=${HOST_IP}`,
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    "--authorization-mode=Node,RBAC",
    // MutatingAdmissionWebhook and ValidatingAdmissionWebhook are on by default.
    "--enable-admission-plugins=NodeRestriction",
    `--client-ca-file=${f("ca.crt")}`,
    `--tls-cert-file=${f("apiserver.crt")}`,
    `--tls-private-key-file=${f("apiserver.key")}`,
    `--service-account-issuer=https://kubernetes.default.svc.${CLUSTER_DOMAIN}`,
    `--service-account-key-file=${f("sa.pub")}`,
    `--service-account-signing-key-file=${f("sa.key")}`,
    // Webhooks and aggregated APIs behind Services resolve to endpoint addresses (no kube-proxy).
    "--enable-aggregator-routing=true",
    `--requestheader-client-ca-file=${f("front-proxy-ca.crt")}`,
    "--requestheader-allowed-names=front-proxy-client",
    "--requestheader-extra-headers-prefix=X-Remote-Extra-",
    "--requestheader-group-headers=X-Remote-Group",
    "--requestheader-username-headers=X-Remote-User",
    `--proxy-client-cert-file=${f("front-proxy-client.crt")}`,
    `--proxy-client-key-file=${f("front-proxy-client.key")}`,
    // Logs, exec and port-forward: to the kubelet at the node's InternalIP, both sides verified.
    `--kubelet-client-certificate=${f(`${KUBELET_CLIENT_CERT}.crt`)}`,
    `--kubelet-client-key=${f(`${KUBELET_CLIENT_CERT}.key`)}`,
    `--kubelet-certificate-authority=${f("ca.crt")}`,
    "--kubelet-preferred-address-types=InternalIP",
    "--allow-privileged=true",
    "--profiling=false",
    "--event-ttl=1h",
    "--v=1",
  ]);
}

export function startControllerManager(): ProcRecord {
  const f = (n: string) => pki().file(n);
  const kc = kubeconfigFile("controller-manager");
  return daemon("kube-controller-manager", bin("kube-controller-manager"), [
    `--kubeconfig=${kc}`,
    `--authentication-kubeconfig=${kc}`,
    `--authorization-kubeconfig=${kc}`,
    "--bind-address=127.0.0.1",
    `--secure-port=${KCM_PORT}`,
    "--leader-elect=false",
    "--controllers=*",
    "--allocate-node-cidrs=false",
    `--cluster-cidr=${CLUSTER_POD_CIDR}`,
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    `--root-ca-file=${f("ca.crt")}`,
    `--service-account-private-key-file=${f("sa.key")}`,
    "--use-service-account-credentials=true",
    // Bursts of hundreds of pods (tests, benchmarks) should not wait on client-side throttling.
    "--kube-api-qps=200",
    "--kube-api-burst=400",
    "--concurrent-replicaset-syncs=10",
    `--cluster-signing-cert-file=${f("ca.crt")}`,
    `--cluster-signing-key-file=${f("ca.key")}`,
    "--profiling=false",
    "--v=1",
  ]);
}

export function startScheduler(): ProcRecord {
  const kc = kubeconfigFile("scheduler");
  return daemon("kube-scheduler", bin("kube-scheduler"), [
    `--kubeconfig=${kc}`,
    `--authentication-kubeconfig=${kc}`,
    `--authorization-kubeconfig=${kc}`,
    "--bind-address=127.0.0.1",
    `--secure-port=${SCHEDULER_PORT}`,
    "--leader-elect=false",
    "--kube-api-qps=200",
    "--kube-api-burst=400",
    "--profiling=false",
    "--v=1",
  ]);
}

/** GET a health URL; resolves to the body on 200, throws otherwise. */
export function probeUrl(url: string, ca?: Buffer, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === "https:" ? https : http;
    const req = mod.get(
      url,
      { timeout: timeoutMs, ...(u.protocol === "https:" ? { ca, rejectUnauthorized: !!ca } : {}) },
      res => {
        let body = "";
        res.setEncoding("utf8").on("data", d => (body += d));
        res.on("end", () =>
          res.statusCode === 200
            ? resolve(body)
            : reject(new Error(`${url}: ${res.statusCode} ${body.slice(0, 300)}`)),
        );
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${url}: timeout`)));
    req.on("error", reject);
  });
}

/** Waits until `check` resolves, failing early if the process died. */
export async function waitHealthy(
  rec: ProcRecord,
  what: string,
  check: () => Promise<unknown>,
  timeoutMs = 120000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    if (!isAlive(rec)) {
      throw new Error(`${what} exited; last lines of ${rec.log}:\n${tail(rec.log, 20)}`);
    }
    try {
      await check();
      return;
    } catch (e) {
      last = e;
    }
    await sleep(250);
  }
  throw new Error(
    `${what} not healthy after ${timeoutMs / 1000}s: ${String(last)}\n${tail(rec.log, 20)}`,
  );
}

export function tail(file: string | undefined, lines: number): string {
  if (!file) return "";
  try {
    return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

export const etcdHealthy = () => probeUrl(`http://127.0.0.1:${ETCD_CLIENT_PORT}/health`);
export const apiserverReady = () =>
  probeUrl(`https://127.0.0.1:${API_PORT}/readyz`, fs.readFileSync(pki().file("ca.crt")));
export const kcmHealthy = () => probeUrl(`https://127.0.0.1:${KCM_PORT}/healthz`);
export const schedulerHealthy = () => probeUrl(`https://127.0.0.1:${SCHEDULER_PORT}/healthz`);

export const adminKube = () => Kube.fromKubeconfig(paths.kubeconfig);

/** The control-plane daemons the chaos suite restarts, with how each starts and when it is back. */
const RESTARTABLE = {
  etcd: { start: () => startEtcd(), healthy: () => etcdHealthy() },
  "kube-apiserver": { start: () => startApiserver(), healthy: () => apiserverReady() },
} as const;
export type Restartable = keyof typeof RESTARTABLE;

/**
 * Stops a running control-plane daemon (SIGTERM, SIGKILL after `graceMs`; 0: SIGKILL at once) and
 * starts it again with the same flags and data; resolves once it is healthy. Returns the seconds
 * it was down.
 */
export async function restartControlPlane(name: Restartable, graceMs = 5000): Promise<number> {
  const rec = readJson<ProcRecord>(path.join(paths.procs, `${name}.json`));
  if (!rec || !isAlive(rec))
    throw new Error(
      `${name} is not running (no live record in ${paths.procs}): start the cluster first`,
    );
  const t0 = Date.now();
  if (graceMs === 0) process.kill(rec.group ? -rec.pid : rec.pid, "SIGKILL");
  await stopProcess(rec, graceMs);
  const c = RESTARTABLE[name];
  const next = c.start();
  await waitHealthy(next, name, c.healthy);
  return (Date.now() - t0) / 1000;
}
