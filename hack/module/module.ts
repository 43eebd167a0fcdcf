// Runs the built Pepr module on the local cluster the way its Deployments would, without images:
// admission replicas in node network namespaces (the apiserver reaches them through the webhook
// Service's endpoints, --enable-aggregator-routing), one watcher in the host namespace.
import * as fs from "node:fs";
import * as path from "node:path";
import { parseAllDocuments } from "yaml";
import { REPO_ROOT, HOST_IP, API_PORT, bin, nodeSpec, paths } from "../cluster/config";
import { readProcRecords, runOk, startDaemon, stopProcess } from "../cluster/proc";
import { peprStoreCRD } from "pepr/src/lib/assets/store";
import { POLICIES, fixDist, isStoreRbac } from "./policies";

const UUID = "pepr-macvlan";
const NAME = `pepr-${UUID}`;
const NAMESPACE = "pepr-system";
const MODULE_JS = path.join(REPO_ROOT, "dist", `${NAME}.js`);
const MODULE_YAML = path.join(REPO_ROOT, "dist", `pepr-module-${UUID}.yaml`);
export const moduleDir = path.join(paths.state, "module");
const PORT = 3000;

const log = (msg: string) => console.log(`\x1b[1m[module]\x1b[0m ${msg}`);
const kubectl = (args: string[], input?: string) =>
  runOk(bin("kubectl"), ["--kubeconfig", paths.kubeconfig, ...args], { input });

interface Doc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}

/** `npx pepr build` unless dist/ is newer than every source file. */
export function build(force = false): void {
  const newest = newestSource();
  if (
    !force &&
    fs.existsSync(MODULE_JS) &&
    fs.statSync(MODULE_JS).mtimeMs >= newest &&
    fs.existsSync(MODULE_YAML)
  ) {
    log("dist/ is up to date");
    return;
  }
  log("building the module (npx pepr build)…");
  runOk("npx", ["pepr", "build"], { cwd: REPO_ROOT, timeoutMs: 600_000 });
  fixDist();
}

function newestSource(): number {
  let newest = fs.statSync(path.join(REPO_ROOT, "package.json")).mtimeMs;
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith(".ts")) newest = Math.max(newest, fs.statSync(full).mtimeMs);
    }
  };
  for (const dir of ["capabilities", "lib", "crds"]) walk(path.join(REPO_ROOT, dir));
  newest = Math.max(newest, fs.statSync(path.join(REPO_ROOT, "pepr.ts")).mtimeMs);
  return newest;
}

/** Admission replicas run in the first `replicas` nodes' network namespaces, on their LAN IPs. */
const admissionNodes = (replicas: number) =>
  Array.from({ length: replicas }, (_, i) => nodeSpec(i + 1));

/**
 * Applies CRDs, the admission policies and the module's manifests, minus its Deployments, with
 * endpoints we control. The processes run as the module's ServiceAccount (scoped ClusterRole), the
 * identity deploy/policies.yaml lets write leases and managed NADs, as in a real deployment.
 */
export function install(replicas = 2): void {
  log("applying CRDs (crds/ and Pepr's store)");
  kubectl(["apply", "-f", path.join(REPO_ROOT, "crds")]);
  kubectl(["apply", "-f", "-"], JSON.stringify(peprStoreCRD));
  kubectl([
    "wait",
    "--for=condition=Established",
    "--timeout=60s",
    "crd/macvlansubnets.macvlan.dev",
    "crd/macvlanleases.macvlan.dev",
    "crd/peprstores.pepr.dev",
  ]);
  log("applying the admission policies (deploy/policies.yaml)");
  kubectl(["apply", "-f", POLICIES]);

  const docs = parseAllDocuments(fs.readFileSync(MODULE_YAML, "utf8"))
    .map(d => d.toJS() as Doc)
    // Pepr's store Role/RoleBinding names a ServiceAccount that does not exist (policies.ts).
    .filter(d => d && d.kind !== "Deployment" && !isStoreRbac(d));
  const service = docs.find(d => d.kind === "Service" && d.metadata.name === NAME);
  if (!service)
    throw new Error(`${MODULE_YAML} has no Service ${NAME}: rebuild with npx pepr build`);
  // No kube-proxy and no pods: the Service has no selector; its endpoints are the replicas.
  delete service.spec!.selector;
  const ips = admissionNodes(replicas).map(n => n.ip);
  const extra = [
    {
      apiVersion: "v1",
      kind: "Endpoints",
      metadata: { name: NAME, namespace: NAMESPACE },
      subsets: [{ addresses: ips.map(ip => ({ ip })), ports: [{ port: PORT }] }],
    },
    {
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: {
        name: `${NAME}-local`,
        namespace: NAMESPACE,
        labels: { "kubernetes.io/service-name": NAME },
      },
      addressType: "IPv4",
      ports: [{ port: PORT, protocol: "TCP" }],
      endpoints: ips.map(ip => ({ addresses: [ip], conditions: { ready: true } })),
    },
  ];
  // Webhooks last: they must not fail requests before the replicas are reachable.
  const hooks = docs.filter(d => d.kind.endsWith("WebhookConfiguration"));
  const rest = docs.filter(d => !d.kind.endsWith("WebhookConfiguration"));
  log(`applying ${rest.length} module objects (namespace, RBAC, secrets, service)`);
  kubectl(["apply", "--server-side", "--force-conflicts", "-f", "-"], list([...rest, ...extra]));

  fs.mkdirSync(moduleDir, { recursive: true });
  const tls = docs.find(d => d.kind === "Secret" && d.metadata.name === `${NAME}-tls`)!;
  const apiPath = docs.find(d => d.kind === "Secret" && d.metadata.name === `${NAME}-api-path`)!;
  fs.writeFileSync(path.join(moduleDir, "tls.crt"), Buffer.from(tls.data!["tls.crt"], "base64"));
  fs.writeFileSync(path.join(moduleDir, "tls.key"), Buffer.from(tls.data!["tls.key"], "base64"), {
    mode: 0o600,
  });
  fs.writeFileSync(
    path.join(moduleDir, "api-path"),
    Buffer.from(apiPath.data!.value, "base64").toString().trim(),
  );
  writeModuleKubeconfig();
  fs.writeFileSync(path.join(moduleDir, "webhooks.json"), list(hooks));
}

/** The module authenticates as its ServiceAccount, as in a Deployment, so RBAC is exercised. */
function writeModuleKubeconfig(): void {
  const token = kubectl(["-n", NAMESPACE, "create", "token", NAME, "--duration=48h"]).trim();
  const ca = kubectl([
    "config",
    "view",
    "--raw",
    "--minify",
    "-o",
    "jsonpath={.clusters[0].cluster.certificate-authority-data}",
  ]).trim();
  const config = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      {
        name: "local",
        cluster: { server: `https://${HOST_IP}:${API_PORT}`, "certificate-authority-data": ca },
      },
    ],
    users: [{ name: NAME, user: { token } }],
    contexts: [{ name: NAME, context: { cluster: "local", user: NAME } }],
    "current-context": NAME,
  };
  fs.writeFileSync(path.join(moduleDir, "kubeconfig"), JSON.stringify(config), { mode: 0o600 });
}

const list = (items: unknown[]) => JSON.stringify({ apiVersion: "v1", kind: "List", items });

function env(watch: boolean): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PEPR_WATCH_MODE: watch ? "true" : "false",
    PEPR_PRETTY_LOG: "false",
    LOG_LEVEL: process.env.LOG_LEVEL ?? "info",
    PEPR_API_PATH: fs.readFileSync(path.join(moduleDir, "api-path"), "utf8"),
    SSL_KEY_PATH: path.join(moduleDir, "tls.key"),
    SSL_CERT_PATH: path.join(moduleDir, "tls.crt"),
    KUBECONFIG: path.join(moduleDir, "kubeconfig"),
  };
}

/** Starts the replicas and the watcher, waits until they serve, then registers the webhooks. */
export async function start(replicas = 2): Promise<void> {
  await stop();
  const nodes = admissionNodes(replicas);
  nodes.forEach((node, i) => {
    startDaemon({
      name: `pepr-admission-${i + 1}`,
      cmd: "ip",
      args: ["netns", "exec", node.name, process.execPath, MODULE_JS],
      log: path.join(moduleDir, `admission-${i + 1}.log`),
      env: { ...env(false), HOSTNAME: `pepr-admission-${i + 1}` },
      cwd: REPO_ROOT,
      recordDir: paths.procs,
    });
  });
  startDaemon({
    name: "pepr-watcher",
    cmd: process.execPath,
    args: [MODULE_JS],
    log: path.join(moduleDir, "watcher.log"),
    env: { ...env(true), HOSTNAME: "pepr-watcher" },
    cwd: REPO_ROOT,
    recordDir: paths.procs,
  });
  for (const node of nodes) await waitHealthy(node.name, node.ip);
  await waitHealthy(undefined, "127.0.0.1");
  kubectl([
    "apply",
    "--server-side",
    "--force-conflicts",
    "-f",
    path.join(moduleDir, "webhooks.json"),
  ]);
  log(
    `module running: ${replicas} admission replicas (${nodes.map(n => n.ip).join(", ")}) and a watcher`,
  );
}

async function waitHealthy(
  netns: string | undefined,
  ip: string,
  timeoutMs = 180_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const curl = [
    "curl",
    "-sk",
    "--max-time",
    "2",
    "-o",
    "/dev/null",
    "-w",
    "%{http_code}",
    `https://${ip}:${PORT}/healthz`,
  ];
  while (Date.now() < deadline) {
    try {
      const code = netns
        ? runOk("ip", ["netns", "exec", netns, ...curl])
        : runOk(curl[0], curl.slice(1));
      if (code.trim() === "200") return;
    } catch {
      /* not up yet */
    }
    await new Promise(r => setTimeout(r, 500));
  }
  const logs = fs
    .readdirSync(moduleDir)
    .filter(f => f.endsWith(".log"))
    .map(f => `--- ${f}\n${tail(path.join(moduleDir, f), 15)}`)
    .join("\n");
  throw new Error(
    `Pepr process on ${ip}:${PORT} did not become healthy within ${timeoutMs / 1000}s\n${logs}`,
  );
}

function tail(file: string, lines: number): string {
  return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
}

export async function stop(): Promise<void> {
  for (const rec of readProcRecords(paths.procs).filter(r => r.name.startsWith("pepr-"))) {
    await stopProcess(rec, 3000);
    fs.rmSync(path.join(paths.procs, `${rec.name}.json`), { force: true });
  }
}

/** Removes the webhooks first, so a stopped module cannot block the cluster. */
export function uninstall(): void {
  if (fs.existsSync(path.join(moduleDir, "webhooks.json"))) {
    kubectl(["delete", "--ignore-not-found", "-f", path.join(moduleDir, "webhooks.json")]);
  }
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  const replicas = Number(rest[rest.indexOf("--replicas") + 1]) || 2;
  switch (cmd) {
    case "up":
      build(rest.includes("--rebuild"));
      install(replicas);
      await start(replicas);
      return;
    case "down":
      uninstall();
      await stop();
      return;
    default:
      console.log(`usage: npm run module -- up [--replicas N] [--rebuild] | down

  up    build the module if sources changed (npx pepr build), apply crds/ and the module's
        manifests to the local cluster, start N admission replicas (default 2) in the node
        network namespaces and one watcher, then register the webhooks
  down  remove the webhooks and stop the module's processes`);
      process.exitCode = cmd ? 1 : 0;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch(e => {
    console.error(`module: ${(e as Error).message}`);
    process.exit(1);
  });
}
