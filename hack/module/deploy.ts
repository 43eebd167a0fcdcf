// Installs pepr-macvlan on the local cluster exactly as a user does on a real one (README "Install
// on a real cluster"), for the local cluster (`npm run cluster -- up`), where
// the Deployments and the DaemonSet run from their images:
//   kubectl apply -f crds/
//   kubectl apply -f deploy/policies.yaml   (ValidatingAdmissionPolicies: hack/module/policies.ts)
//   kubectl apply -f dist/pepr-module-pepr-macvlan.yaml   (the default: `npm run build`'s
//                                     manifest, rebuilt only when the module's sources changed:
//                                     hack/module/manifest.ts), or with way "pepr-deploy":
//   npx pepr deploy --yes            (builds the module and applies it through $KUBECONFIG; then the
//                                     store Role/RoleBinding Pepr binds to a missing ServiceAccount
//                                     is deleted)
//   kubectl apply -f deploy/availability.yaml   (the admission PodDisruptionBudget)
//   kubectl apply -f agent/deploy/agent.yaml
// then waits until the admission Deployment (2 replicas), the watcher and one agent per node are
// Ready. The webhook Service keeps its selector: the endpoints controller fills it with the admission
// pods' IPs, which the apiserver calls directly (--enable-aggregator-routing) through the host routes.
//
// Usage: npx tsx hack/module/deploy.ts up [--no-agent]   |   agent
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT, bin, cniBinDir, paths } from "../cluster/config";
import { Kube, KubeObject, loadKubeconfig } from "../cluster/kube";
import { runAsync } from "../cluster/proc";
import {
  MODULE_MANIFEST,
  ensureModuleBuilt,
  invalidateModuleBuild,
  manifestWithEnv,
} from "./manifest";
import {
  MODULE_CONTAINERS,
  MODULE_CONTAINER_SETTINGS,
  POLICIES,
  deleteStoreRbacArgs,
} from "./policies";

export const NAMESPACE = "pepr-system";
export const ADMISSION = "pepr-pepr-macvlan";
export const WATCHER = "pepr-pepr-macvlan-watcher";
export const AGENT = "pepr-macvlan-agent";
export const AGENT_MANIFEST = path.join(REPO_ROOT, "agent", "deploy", "agent.yaml");
/** The admission PodDisruptionBudget, applied after `npx pepr deploy`. */
export const AVAILABILITY = path.join(REPO_ROOT, "deploy", "availability.yaml");

const log = (msg: string) => console.log(`\x1b[1m[deploy]\x1b[0m ${msg}`);
const sleep = (ms: number) => new Promise<void>(r => setTimeout(r, ms));

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = KubeObject & { spec: any; status?: any };

export async function kubectl(args: string[], timeoutMs = 120_000): Promise<string> {
  const r = await runAsync(bin("kubectl"), ["--kubeconfig", paths.kubeconfig, ...args], {
    timeoutMs,
  });
  if (r.code !== 0)
    throw new Error(
      `kubectl ${args.join(" ")} failed (${r.code}): ${(r.stderr || r.stdout).trim()}`,
    );
  return r.stdout;
}

/**
 * Runs a command in its own process group with KUBECONFIG pointing at the local cluster; on timeout
 * the whole group is killed (npx → pepr → esbuild). Resolves with its exit code and output.
 */
function runGroup(
  cmd: string,
  args: string[],
  timeoutMs: number,
  echo: boolean,
): Promise<{ code: number; output: string }> {
  return new Promise(resolve => {
    const child = spawn(cmd, args, {
      cwd: REPO_ROOT,
      env: { ...process.env, KUBECONFIG: paths.kubeconfig },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let output = "";
    const onData = (d: string) => {
      output += d;
      if (echo) process.stdout.write(d);
    };
    child.stdout.setEncoding("utf8").on("data", onData);
    child.stderr.setEncoding("utf8").on("data", onData);
    const timer = setTimeout(() => {
      output += `\n[timed out after ${timeoutMs} ms]`;
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        /* already gone */
      }
    }, timeoutMs);
    child.on("error", err => {
      clearTimeout(timer);
      resolve({ code: 127, output: output + err.message });
    });
    child.on("close", code => {
      clearTimeout(timer);
      resolve({ code: code ?? 137, output });
    });
  });
}

/** `kubectl apply -f crds/` and wait until both CRDs are Established. */
export async function applyCrds(): Promise<void> {
  await kubectl(["apply", "-f", path.join(REPO_ROOT, "crds")]);
  await kubectl([
    "wait",
    "--for=condition=Established",
    "--timeout=60s",
    "crd/macvlansubnets.macvlan.dev",
    "crd/macvlanleases.macvlan.dev",
  ]);
}

/**
 * The OpenAPI groups the policies' expressions are type-checked against. The API server checks a
 * policy once per generation, against the schemas it publishes at that moment: a CRD Established
 * a moment ago may not be published yet, and the check then records warnings that stay (seen
 * once in CI for the NAD policy).
 */
const POLICY_SCHEMAS = [
  "/openapi/v3/apis/macvlan.dev/v1alpha1",
  "/openapi/v3/apis/k8s.cni.cncf.io/v1",
];

/** `kubectl apply -f deploy/policies.yaml`, once the kinds they check are published. */
export async function applyPolicies(): Promise<void> {
  for (const schema of POLICY_SCHEMAS) {
    const deadline = Date.now() + 60_000;
    while (
      !(await kubectl(["get", "--raw", schema]).then(
        () => true,
        () => false,
      ))
    ) {
      if (Date.now() > deadline) throw new Error(`${schema} is not published after 60 s`);
      await new Promise(r => setTimeout(r, 500));
    }
  }
  await kubectl(["apply", "-f", POLICIES]);
}

/**
 * `npx pepr deploy --yes` (it builds the module into dist/ first, applies the namespace, webhooks,
 * Pepr store CRD, RBAC, secrets, Services and Deployments, then waits until every Deployment in
 * pepr-system is ready). Throws with pepr's output when it fails or times out.
 */
export async function peprDeploy(
  opts: { timeoutMs?: number; echo?: boolean } = {},
): Promise<{ seconds: number; output: string }> {
  const t0 = Date.now();
  const r = await runGroup(
    "npx",
    ["--no-install", "pepr", "deploy", "--yes"],
    opts.timeoutMs ?? 300_000,
    opts.echo ?? false,
  );
  invalidateModuleBuild(); // it rewrote dist/ (unscoped webhooks, store RBAC)
  if (r.code !== 0 || !/Module deployed successfully/.test(r.output))
    throw new Error(`npx pepr deploy --yes failed (exit ${r.code}):\n${r.output.slice(-6000)}`);
  // Pepr 1.1.4 binds its store Role to a ServiceAccount that does not exist; the module's
  // ClusterRole grants the stores by name (package.json pepr.rbac). See hack/module/policies.ts.
  await kubectl(deleteStoreRbacArgs());
  return { seconds: (Date.now() - t0) / 1000, output: r.output };
}

/**
 * agent/deploy/agent.yaml (the agent's image is imported on every kubelet node), with one change:
 * the local cluster's kubelets keep their CNI plugins in the binary cache, not in /opt/cni/bin,
 * so the init container installs the chained plugin there (over the copy hack/build-binaries.sh
 * put there for tests that run without the agent).
 */
export function localAgentManifest(): string {
  const manifest = fs
    .readFileSync(AGENT_MANIFEST, "utf8")
    .replace(/^(\s+path: )\/opt\/cni\/bin$/m, `$1${cniBinDir()}`);
  if (!manifest.includes(cniBinDir()))
    throw new Error(`${AGENT_MANIFEST}: no hostPath /opt/cni/bin to point at ${cniBinDir()}`);
  return manifest;
}

/** Applies localAgentManifest(). */
export async function applyAgent(): Promise<void> {
  const file = path.join(paths.state, "agent.yaml");
  fs.writeFileSync(file, localAgentManifest());
  await kubectl(["apply", "-f", file]);
}

export interface ModuleReady {
  admission: Obj[];
  watcher: Obj[];
}

const ready = (p: Obj) =>
  p.status?.phase === "Running" &&
  !p.metadata.deletionTimestamp &&
  (p.status?.conditions ?? []).some(
    (c: { type: string; status: string }) => c.type === "Ready" && c.status === "True",
  );

async function waitUntil<T>(
  what: string,
  fn: () => Promise<T | false | undefined>,
  timeoutMs: number,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`,
      );
    await sleep(1000);
  }
}

export function kube(): Kube {
  return new Kube(loadKubeconfig(paths.kubeconfig));
}

const podsOf = async (api: Kube, selector: string) =>
  ((await api.get(`/api/v1/namespaces/${NAMESPACE}/pods`, { labelSelector: selector })).items ??
    []) as Obj[];

/** Admission pods (2) and the watcher Ready, and the webhook Service's endpoints list the admission pods. */
export async function waitForModule(timeoutMs = 180_000): Promise<ModuleReady> {
  const api = kube();
  try {
    return await waitUntil(
      "the Pepr admission (2 Ready) and watcher (1 Ready) pods and the webhook endpoints",
      async () => {
        const admission = (await podsOf(api, "pepr.dev/controller=admission")).filter(ready);
        const watcher = (await podsOf(api, "pepr.dev/controller=watcher")).filter(ready);
        if (admission.length !== 2 || watcher.length !== 1) return false;
        const slices = (
          await api.get(`/apis/discovery.k8s.io/v1/namespaces/${NAMESPACE}/endpointslices`, {
            labelSelector: `kubernetes.io/service-name=${ADMISSION}`,
          })
        ).items as Obj[];
        const addresses = slices
          .flatMap(s => (s as { endpoints?: { addresses: string[] }[] }).endpoints ?? [])
          .flatMap(e => e.addresses);
        const want = admission.map(p => p.status.podIP as string);
        return want.every(ip => addresses.includes(ip)) && { admission, watcher };
      },
      timeoutMs,
    );
  } finally {
    api.close();
  }
}

/** One Ready agent pod per node. */
export async function waitForAgent(timeoutMs = 120_000): Promise<Obj[]> {
  const api = kube();
  try {
    const nodes = ((await api.get("/api/v1/nodes")).items as Obj[]).map(n => n.metadata.name);
    return await waitUntil(
      `one Ready ${AGENT} pod on each of ${nodes.join(", ")}`,
      async () => {
        const pods = (await podsOf(api, `app.kubernetes.io/name=${AGENT}`)).filter(ready);
        const on = pods.map(p => p.spec.nodeName as string).sort();
        return on.length === nodes.length && nodes.every(n => on.includes(n!)) && pods;
      },
      timeoutMs,
    );
  } finally {
    api.close();
  }
}

/**
 * `kubectl set env` on the admission Deployment and the watcher (settings such as
 * MACVLAN_RESYNC_SECONDS), then waits for both rollouts and the module to be Ready again.
 */
export async function setModuleEnv(env: Record<string, string>): Promise<void> {
  await setEnv(env);
  await waitForRollout();
}

async function setEnv(env: Record<string, string>): Promise<void> {
  const pairs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  const deployments = [`deployment/${ADMISSION}`, `deployment/${WATCHER}`];
  await kubectl(["-n", NAMESPACE, "set", "env", ...deployments, ...pairs]);
}

async function waitForRollout(): Promise<void> {
  for (const d of [ADMISSION, WATCHER])
    await kubectl(
      ["-n", NAMESPACE, "rollout", "status", `deployment/${d}`, "--timeout=180s"],
      200_000,
    );
  await waitForModule();
}

/** Resolves once `npx pepr deploy` has created both Deployments (it is still waiting for them). */
async function deploymentsCreated(timeoutMs = 240_000): Promise<void> {
  const api = kube();
  try {
    await waitUntil(
      "the admission and watcher Deployments",
      async () => {
        for (const d of [ADMISSION, WATCHER])
          if (!(await api.getOrUndefined(`/apis/apps/v1/namespaces/${NAMESPACE}/deployments/${d}`)))
            return false;
        return true;
      },
      timeoutMs,
    );
  } finally {
    api.close();
  }
}

/** Scales one of the module's Deployments and waits until that many of its pods run Ready, alone. */
async function scaleModule(
  deployment: string,
  role: "admission" | "watcher",
  replicas: number,
  timeoutMs: number,
): Promise<void> {
  await kubectl(["-n", NAMESPACE, "scale", `deployment/${deployment}`, `--replicas=${replicas}`]);
  const api = kube();
  try {
    await waitUntil(
      `${replicas} ${role} pod${replicas === 1 ? "" : "s"} (and no terminating one)`,
      async () => {
        const pods = await podsOf(api, `pepr.dev/controller=${role}`);
        return pods.length === replicas && pods.every(ready);
      },
      timeoutMs,
    );
  } finally {
    api.close();
  }
}

/**
 * Scales the watcher Deployment (0 stops it, as an outage would; 1 brings it back) and waits until
 * that many watcher pods run Ready and no other is left.
 */
export const scaleWatcher = (replicas: 0 | 1, timeoutMs = 120_000) =>
  scaleModule(WATCHER, "watcher", replicas, timeoutMs);

/** The same for the admission Deployment (0: the webhook is down; 2: as deployed). */
export const scaleAdmission = (replicas: number, timeoutMs = 120_000) =>
  scaleModule(ADMISSION, "admission", replicas, timeoutMs);

/** How the module goes in: `npx pepr deploy` (as the README's first way) or the built manifest. */
export type InstallWay = "pepr-deploy" | "manifest";

/**
 * The built manifest (hack/module/manifest.ts: `npx pepr build` + fix-dist, only when the module's
 * sources changed), with the settings in its Deployments, applied with kubectl.
 */
async function installFromManifest(env: Record<string, string>): Promise<void> {
  const b = await ensureModuleBuilt(log);
  if (b.built) log(`module built in ${b.seconds.toFixed(1)} s`);
  const file = path.join(paths.state, "pepr-module.yaml");
  fs.writeFileSync(file, manifestWithEnv(fs.readFileSync(MODULE_MANIFEST, "utf8"), env));
  log(
    `kubectl apply -f ${path.relative(REPO_ROOT, MODULE_MANIFEST)}${Object.keys(env).length ? ` (with ${Object.keys(env).join(", ")})` : ""}`,
  );
  await kubectl(["apply", "--server-side", "--force-conflicts", "-f", file], 180_000);
}

/** `npx pepr deploy --yes`, with the settings set as soon as the Deployments exist. */
async function installWithPeprDeploy(opts: DeployOptions): Promise<void> {
  log(`npx pepr deploy --yes (KUBECONFIG=${paths.kubeconfig})`);
  const deployed = peprDeploy({ timeoutMs: opts.timeoutMs, echo: opts.echo });
  deployed.catch(() => undefined); // awaited below; this only keeps an early throw from orphaning it
  const env = opts.env ?? {};
  // Patched as soon as the Deployments exist, so their first pods already start with it.
  await Promise.race([deploymentsCreated(), deployed]);
  log(
    "kubectl patch: the module's probes and resources on the admission and watcher Deployments (fix-dist's)",
  );
  await setModuleSettings();
  if (Object.keys(env).length) {
    log(`kubectl set env ${Object.keys(env).join(", ")} on the admission and watcher Deployments`);
    await setEnv(env);
  }
  await deployed;
}

/** What fix-dist sets in the manifest (policies.ts MODULE_CONTAINER_SETTINGS), for `npx pepr deploy`'s. */
async function setModuleSettings(): Promise<void> {
  for (const [deployment, name] of Object.entries(MODULE_CONTAINERS)) {
    // A strategic merge patch: resources.limits.cpu must be removed explicitly (null).
    const resources = {
      ...MODULE_CONTAINER_SETTINGS.resources,
      limits: { ...MODULE_CONTAINER_SETTINGS.resources.limits, cpu: null },
    };
    const container = { name, ...MODULE_CONTAINER_SETTINGS, resources };
    const patch = { spec: { template: { spec: { containers: [container] } } } };
    await kubectl([
      "-n",
      NAMESPACE,
      "patch",
      "deployment",
      deployment,
      "-p",
      JSON.stringify(patch),
    ]);
  }
}

export interface DeployOptions {
  agent?: boolean;
  echo?: boolean;
  timeoutMs?: number;
  env?: Record<string, string>;
  /** Default: the manifest; PMV_INSTALL=pepr-deploy or `way: "pepr-deploy"` for `npx pepr deploy`. */
  way?: InstallWay;
}

/** CRDs, policies, the module (see InstallWay), its PDB, Ready; then (unless agent=false) the agent. */
export async function deploy(
  opts: DeployOptions = {},
): Promise<{ moduleSeconds: number; agentSeconds?: number }> {
  const t0 = Date.now();
  log("kubectl apply -f crds/");
  await applyCrds();
  log(`kubectl apply -f ${path.relative(REPO_ROOT, POLICIES)}`);
  await applyPolicies();
  const way = opts.way ?? (process.env.PMV_INSTALL as InstallWay | undefined) ?? "manifest";
  if (way === "pepr-deploy") await installWithPeprDeploy(opts);
  else await installFromManifest(opts.env ?? {});
  log(`kubectl apply -f ${path.relative(REPO_ROOT, AVAILABILITY)}`);
  await kubectl(["apply", "-f", AVAILABILITY]);
  await waitForRollout();
  const moduleSeconds = (Date.now() - t0) / 1000;
  log(`module Ready (2 admission pods, 1 watcher) ${moduleSeconds.toFixed(1)} s after start`);
  if (opts.agent === false) return { moduleSeconds };
  const t1 = Date.now();
  log(`kubectl apply -f ${path.relative(REPO_ROOT, AGENT_MANIFEST)}`);
  await applyAgent();
  await waitForAgent();
  const agentSeconds = (Date.now() - t1) / 1000;
  log(`agent Ready on every node ${agentSeconds.toFixed(1)} s after it was applied`);
  return { moduleSeconds, agentSeconds };
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === "up") {
    await deploy({
      agent: !rest.includes("--no-agent"),
      echo: rest.includes("--verbose"),
      ...(rest.includes("--pepr-deploy") ? { way: "pepr-deploy" as const } : {}),
    });
    return 0;
  }
  if (cmd === "agent") {
    await applyAgent();
    await waitForAgent();
    return 0;
  }
  console.log(`usage: npx tsx hack/module/deploy.ts up [--pepr-deploy] [--no-agent] [--verbose] | agent

  up     on the local cluster (npm run cluster -- up): kubectl apply -f crds/ and
         deploy/policies.yaml; the module from dist/pepr-module-pepr-macvlan.yaml (npx pepr build
         and fix-dist when its sources changed), or with --pepr-deploy (or PMV_INSTALL=pepr-deploy)
         npx pepr deploy --yes (KUBECONFIG=.cluster/kubeconfig); deploy/availability.yaml; wait
         for the admission pods, the watcher and the webhook endpoints, then kubectl apply -f
         agent/deploy/agent.yaml and wait for one agent per node
  agent  only the agent DaemonSet`);
  return cmd ? 1 : 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    code => process.exit(code),
    (e: unknown) => {
      console.error(`deploy: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(1);
    },
  );
}
