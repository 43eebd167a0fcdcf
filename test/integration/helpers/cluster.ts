// Shared helpers for integration tests against the local cluster (hack/cluster.sh).
//
//   import test from "ava";
//   import { withCluster } from "./helpers";
//   const cluster = withCluster(test, { nodes: 2 });      // up in test.before, down in test.after.always
//   test.serial("…", async t => { await cluster().apply(obj); … });
//
// One cluster per test file; files wait for each other on a machine-wide lock (network
// namespace names are global). PMV_CLUSTER_KEEP=1 leaves the cluster running after the file.
import type { ExecutionContext, TestFn } from "ava";
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { acquireLock, podLogText, resolveTarget } from "../../../hack/cluster/cluster";
import { ClusterInfo, NodeSpec, REPO_ROOT, paths } from "../../../hack/cluster/config";
import { Kube, KubeObject, isNotFound } from "../../../hack/cluster/kube";
import {
  ProcRecord,
  RunResult,
  isAlive,
  readJson,
  readProcRecords,
  run,
  runAsync,
} from "../../../hack/cluster/proc";
import { kubeletNodePaths } from "../../../hack/kubelet/config";
import { HostSnapshot, hostSnapshot } from "./host";
import { deploy as deployModule } from "../../../hack/module/deploy";

export { paths, podNetns } from "../../../hack/cluster/config";
export type { ClusterInfo, NodeSpec } from "../../../hack/cluster/config";
export {
  Kube,
  KubeError,
  isNotFound,
  isConflict,
  isAlreadyExists,
} from "../../../hack/cluster/kube";
export type { KubeObject, KubeList } from "../../../hack/cluster/kube";
export type { RunResult } from "../../../hack/cluster/proc";

export interface ClusterOptions {
  /** Number of nodes (default 2). */
  nodes?: number;
  /**
   * Install the module after `up`, as a user does (hack/module/deploy.ts: crds/, policies,
   * `npx pepr deploy --yes`, then `kubectl set env` with these settings, and the agent DaemonSet
   * unless agent is false).
   */
  module?: { env?: Record<string, string>; agent?: boolean };
  /** Leave the cluster running after the tests (default: env PMV_CLUSTER_KEEP=1). */
  keep?: boolean;
  /** Print `up`/`down` output as it happens (default: env PMV_CLUSTER_VERBOSE=1). */
  verbose?: boolean;
}

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** What is awaited, for the timeout error. */
  what?: string;
}

/** An entry of the k8s.v1.cni.cncf.io/network-status annotation. */
export interface NetworkStatus {
  name: string;
  interface?: string;
  ips?: string[];
  mac?: string;
  default?: boolean;
  gateway?: string[];
}

export const sleep = (ms: number) => new Promise<void>(r => setTimeout(r, ms));

/**
 * Polls `fn` until it returns something other than undefined/false/null; returns that value.
 * Exceptions thrown by `fn` count as "not yet" (the last one is reported on timeout).
 */
export async function waitFor<T>(
  fn: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  opts: WaitOptions = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 60000;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== null && v !== false) return v as T;
      last = undefined;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const why = last ? `: ${last instanceof Error ? last.message : String(last)}` : "";
      throw new Error(
        `timed out after ${timeoutMs / 1000}s waiting for ${opts.what ?? "condition"}${why}`,
      );
    }
    await sleep(opts.intervalMs ?? 250);
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Pod = KubeObject & { spec: any; status?: any };

export const podReady = (p: Pod | undefined) =>
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  !!p && p.status?.conditions?.some((c: any) => c.type === "Ready" && c.status === "True");

export class Cluster {
  readonly api: Kube;
  readonly kubeconfig = paths.kubeconfig;
  readonly kubectlPath: string;
  private readonly background = new Set<ChildProcess>();
  private downResult?: RunResult;

  constructor(
    readonly info: ClusterInfo,
    private readonly releaseLock: () => void,
    readonly before: HostSnapshot,
    private readonly opts: ClusterOptions,
  ) {
    this.api = Kube.fromKubeconfig(paths.kubeconfig);
    this.kubectlPath = path.join(info.binDir, "kubectl");
  }

  get nodes(): NodeSpec[] {
    return this.info.nodes;
  }

  node(nameOrIndex: string | number): NodeSpec {
    const n = this.info.nodes.find(x => x.name === nameOrIndex || x.index === nameOrIndex);
    if (!n) throw new Error(`no node ${nameOrIndex}`);
    return n;
  }

  // ---- kubectl ----------------------------------------------------------------------------

  /** Runs kubectl with the admin kubeconfig; returns the result without throwing. */
  kubectlResult(
    args: string[],
    opts: { input?: string; timeoutMs?: number } = {},
  ): Promise<RunResult> {
    return runAsync(this.kubectlPath, ["--kubeconfig", this.kubeconfig, ...args], {
      input: opts.input,
      timeoutMs: opts.timeoutMs ?? 60000,
    });
  }

  /** Runs kubectl; throws on a non-zero exit; returns stdout. */
  async kubectl(
    args: string[],
    opts: { input?: string; timeoutMs?: number } = {},
  ): Promise<string> {
    const r = await this.kubectlResult(args, opts);
    if (r.code !== 0)
      throw new Error(
        `kubectl ${args.join(" ")} failed (${r.code}): ${r.stderr.trim() || r.stdout.trim()}`,
      );
    return r.stdout;
  }

  /** kubectl apply of objects (JSON) or a YAML string. */
  async apply(objs: object | object[] | string): Promise<string> {
    const input =
      typeof objs === "string"
        ? objs
        : JSON.stringify({
            apiVersion: "v1",
            kind: "List",
            items: Array.isArray(objs) ? objs : [objs],
          });
    return this.kubectl(["apply", "-f", "-"], { input });
  }

  // ---- pods -------------------------------------------------------------------------------

  async getPod(namespace: string, name: string): Promise<Pod | undefined> {
    return this.api.getOrUndefined<Pod>(`/api/v1/namespaces/${namespace}/pods/${name}`);
  }

  async listPods(namespace: string, labelSelector?: string): Promise<Pod[]> {
    const l = await this.api.get(`/api/v1/namespaces/${namespace}/pods`, { labelSelector });
    return l.items as Pod[];
  }

  waitForPod(
    namespace: string,
    name: string,
    pred: (p: Pod) => boolean,
    opts: WaitOptions = {},
  ): Promise<Pod> {
    return waitFor(
      async () => {
        const p = await this.getPod(namespace, name);
        return p && pred(p) ? p : undefined;
      },
      { what: `pod ${namespace}/${name}`, ...opts },
    );
  }

  waitForPodReady(namespace: string, name: string, opts: WaitOptions = {}): Promise<Pod> {
    return this.waitForPod(namespace, name, podReady, {
      what: `pod ${namespace}/${name} Ready`,
      ...opts,
    });
  }

  waitForPodGone(namespace: string, name: string, opts: WaitOptions = {}): Promise<true> {
    return waitFor(async () => !(await this.getPod(namespace, name)), {
      what: `pod ${namespace}/${name} gone`,
      ...opts,
    }) as Promise<true>;
  }

  /** Parsed k8s.v1.cni.cncf.io/network-status annotation of a pod. */
  networkStatus(pod: Pod): NetworkStatus[] {
    const a = pod.metadata.annotations?.["k8s.v1.cni.cncf.io/network-status"];
    return a ? (JSON.parse(a) as NetworkStatus[]) : [];
  }

  /** Events about an object (by name), oldest first. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  async events(namespace: string, involvedName: string): Promise<any[]> {
    const l = await this.api.get(`/api/v1/namespaces/${namespace}/events`, {
      fieldSelector: `involvedObject.name=${involvedName}`,
    });
    return l.items;
  }

  // ---- namespaces -------------------------------------------------------------------------

  /** Creates (or updates) a namespace and waits for its default ServiceAccount (pods need it). */
  async createNamespace(name: string, labels: Record<string, string> = {}): Promise<void> {
    await this.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name, labels } });
    await waitFor(
      () => this.api.getOrUndefined(`/api/v1/namespaces/${name}/serviceaccounts/default`),
      {
        what: `default ServiceAccount in ${name}`,
      },
    );
  }

  /** Deletes a namespace; with wait, until it is gone (its pods torn down by the kubelets). */
  async deleteNamespace(name: string, wait = true, timeoutMs = 120000): Promise<void> {
    try {
      await this.api.delete(`/api/v1/namespaces/${name}`);
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    if (wait) {
      await waitFor(async () => !(await this.api.getOrUndefined(`/api/v1/namespaces/${name}`)), {
        what: `namespace ${name} deleted`,
        timeoutMs,
      });
    }
  }

  // ---- exec ---------------------------------------------------------------------------------

  /**
   * Runs a command in a network namespace: `<namespace>/<pod>` (the pod's), `node/<node>` or
   * `netns/<pmv-…>` (e.g. netns/pmv-gw). The host filesystem is visible, as with `cluster exec`.
   */
  async exec(
    target: string,
    cmd: string[],
    opts: { input?: string; timeoutMs?: number } = {},
  ): Promise<RunResult> {
    const t = await resolveTarget(target);
    return runAsync("ip", ["netns", "exec", t.netns, ...cmd], {
      input: opts.input,
      timeoutMs: opts.timeoutMs ?? 30000,
    });
  }

  /** Like exec, but throws on a non-zero exit and returns stdout. */
  async execOk(
    target: string,
    cmd: string[],
    opts: { input?: string; timeoutMs?: number } = {},
  ): Promise<string> {
    const r = await this.exec(target, cmd, opts);
    if (r.code !== 0)
      throw new Error(
        `exec ${target} ${cmd.join(" ")}: exit ${r.code}: ${(r.stderr || r.stdout).trim()}`,
      );
    return r.stdout;
  }

  execPod(
    namespace: string,
    pod: string,
    cmd: string[],
    opts?: { input?: string; timeoutMs?: number },
  ) {
    return this.exec(`${namespace}/${pod}`, cmd, opts);
  }

  execNode(node: string | number, cmd: string[], opts?: { input?: string; timeoutMs?: number }) {
    return this.exec(`node/${this.node(node).name}`, cmd, opts);
  }

  /**
   * Starts a long-running command in a network namespace (tcpdump, nc -l, …). It is killed at
   * the latest when the cluster is stopped; kill it yourself when done.
   */
  async spawnIn(target: string, cmd: string[]): Promise<ChildProcess> {
    const t = await resolveTarget(target);
    const child = spawn("ip", ["netns", "exec", t.netns, ...cmd], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.background.add(child);
    child.on("exit", () => this.background.delete(child));
    return child;
  }

  /** Sends `count` pings (busybox ping) from a target; true if any answer came back. */
  async ping(
    target: string,
    ip: string,
    opts: { count?: number; timeoutS?: number } = {},
  ): Promise<boolean> {
    const count = opts.count ?? 2;
    const r = await this.exec(
      target,
      ["busybox", "ping", "-c", String(count), "-W", String(opts.timeoutS ?? 1), ip],
      {
        timeoutMs: (count + (opts.timeoutS ?? 1) + 5) * 1000,
      },
    );
    return r.code === 0;
  }

  /**
   * HTTP GET from a target's network namespace (curl; busybox wget -T crashes on Debian 12).
   * Resolves to the status code (0 when unreachable) and body.
   */
  async httpGet(
    target: string,
    url: string,
    timeoutS = 3,
  ): Promise<{ status: number; body: string }> {
    const r = await this.exec(
      target,
      ["curl", "-sS", "-m", String(timeoutS), "-o", "-", "-w", "\n%{http_code}", url],
      {
        timeoutMs: (timeoutS + 5) * 1000,
      },
    );
    const i = r.stdout.lastIndexOf("\n");
    return { status: Number(r.stdout.slice(i + 1)) || 0, body: r.stdout.slice(0, Math.max(i, 0)) };
  }

  // ---- node-side state ------------------------------------------------------------------------

  netnsExists(name: string): boolean {
    return fs.existsSync(`/run/netns/${name}`);
  }

  /** Output of a pod's container (the kubelet's log file of its latest run; "" if none yet). */
  async podLog(namespace: string, name: string, container?: string): Promise<string> {
    const p = await this.getPod(namespace, name);
    if (!p?.spec.nodeName) throw new Error(`pod ${namespace}/${name} not scheduled`);
    const pod = { namespace, name, uid: String(p.metadata.uid) };
    return podLogText(p.spec.nodeName, pod, container ?? p.spec.containers[0].name) ?? "";
  }

  /** The processes the cluster started (control plane, containerd and kubelets). */
  processes(): ProcRecord[] {
    return readProcRecords(paths.procs);
  }

  /** For failure reports: each kubectl command with the last `tail` lines of its output. */
  async kubectlReport(commands: string[][], tail = 60): Promise<string> {
    const out: string[] = [];
    for (const args of commands) {
      const r = await this.kubectlResult(args);
      const text = (r.stdout + r.stderr).split("\n").slice(-tail).join("\n");
      out.push(`--- kubectl ${args.join(" ")}\n${text}`);
    }
    return out.join("\n");
  }

  /**
   * Why containers restarted (last termination reason and exit code: OOMKilled, a liveness kill's
   * 137, an error) and the probe and kill Events behind it, for failure reports.
   */
  async restartReasons(): Promise<string> {
    const pods = await this.kubectlResult(["get", "pods", "-A", "-o", "json"], {
      timeoutMs: 10000,
    });
    const lines: string[] = [];
    try {
      for (const p of JSON.parse(pods.stdout).items as Pod[])
        for (const c of p.status?.containerStatuses ?? []) {
          if (!c.restartCount) continue;
          const last = c.lastState?.terminated;
          lines.push(
            `${p.metadata?.namespace}/${p.metadata?.name} ${c.name}: ${c.restartCount} restart(s), ` +
              `last ${last ? `${last.reason} exit ${last.exitCode} at ${last.finishedAt}` : "unknown"}`,
          );
        }
    } catch {
      lines.push(`pods unreadable: ${pods.stderr}`);
    }
    const events = await this.kubectlResult(
      ["get", "events", "-A", "--field-selector", "type=Warning", "--sort-by=.lastTimestamp"],
      { timeoutMs: 10000 },
    );
    const probes = (events.stdout || events.stderr)
      .split("\n")
      .filter(l => /Unhealthy|Killing|OOM|BackOff/.test(l))
      .slice(-20);
    return `--- container restarts\n${lines.join("\n") || "none"}\n--- probe/kill Events\n${probes.join("\n") || "none"}`;
  }

  /** The pod list and each kubelet's last errors, for failure reports. */
  async diagnostics(): Promise<string> {
    const out: string[] = [];
    const r = await this.kubectlResult(["get", "pods", "-A", "-o", "wide"], { timeoutMs: 10000 });
    out.push(r.stdout || r.stderr);
    out.push(await this.restartReasons());
    for (const n of this.nodes) {
      // Errors only: probe results and volume mounts drown everything else in the kubelet's log.
      const f = kubeletNodePaths(n.name).kubeletLog;
      if (!fs.existsSync(f)) continue;
      const errors = fs
        .readFileSync(f, "utf8")
        .split("\n")
        .filter(l => /^E\d{4} /.test(l));
      out.push(`--- errors in ${f}\n${errors.slice(-20).join("\n")}`);
    }
    return out.join("\n");
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  /** Runs `hack/cluster.sh down`, stops background commands and releases the lock. Idempotent. */
  async down(): Promise<RunResult> {
    // Once down, the lock is released and another test file may own a new cluster: never
    // run `down` again from here.
    if (this.downResult) return this.downResult;
    for (const c of this.background) c.kill("SIGKILL");
    this.api.close();
    const r = await runCli(["down"], this.opts.verbose);
    if (r.code !== 0) throw new Error(`cluster down failed:\n${r.stdout}\n${r.stderr}`);
    this.downResult = r;
    // Snapshot while still holding the lock: the next test file may start its cluster next.
    this.after = hostSnapshot(this.info.binDir);
    this.releaseLock();
    return r;
  }

  /** Host snapshot taken right after down() (compare with `before` using diffSnapshots). */
  after?: HostSnapshot;

  /** True once down() has succeeded (the cluster is gone and the lock released). */
  get isDown(): boolean {
    return !!this.downResult;
  }

  /** True if every recorded cluster process is alive. */
  healthy(): boolean {
    return this.processes().every(isAlive);
  }
}

function runCli(
  args: string[],
  verbose = process.env.PMV_CLUSTER_VERBOSE === "1",
): Promise<RunResult> {
  return new Promise(resolve => {
    const child = spawn("bash", [path.join(REPO_ROOT, "hack", "cluster.sh"), ...args], {
      cwd: REPO_ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
      if (verbose) process.stderr.write(d);
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
      if (verbose) process.stderr.write(d);
    });
    child.on("close", code => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/**
 * Takes the machine-wide cluster lock, snapshots the host, runs `hack/cluster.sh up` and returns
 * a Cluster. Call `cluster.down()` when done (withCluster does it for you).
 */
export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const release = await acquireLock(
    "session",
    `integration tests (pid ${process.pid})`,
    60 * 60 * 1000,
  );
  try {
    const binDir = run("bash", [
      path.join(REPO_ROOT, "hack", "build-binaries.sh"),
      "--print-dir",
    ]).stdout.trim();
    // A cluster left running (PMV_CLUSTER_KEEP, a crash, a manual `up`) goes first, so the
    // snapshot is of the machine without any cluster.
    if (fs.existsSync(paths.state) || hostSnapshot(binDir).netns.some(n => n.startsWith("pmv-"))) {
      const d = await runCli(["down"], opts.verbose);
      if (d.code !== 0)
        throw new Error(`cleaning up the previous cluster failed:\n${d.stdout}\n${d.stderr}`);
    }
    const before = hostSnapshot(binDir);
    const r = await runCli(["up", "--nodes", String(opts.nodes ?? 2)], opts.verbose);
    if (r.code !== 0) {
      await runCli(["down"], opts.verbose);
      throw new Error(`cluster up failed:\n${r.stdout}\n${r.stderr}`);
    }
    const info = readJson<ClusterInfo>(paths.clusterJson);
    if (!info) throw new Error(`cluster up did not write ${paths.clusterJson}`);
    return new Cluster(info, release, before, opts);
  } catch (e) {
    release();
    throw e;
  }
}

/**
 * Registers test.serial.before (start a cluster) and test.serial.after.always (stop it) on an
 * ava test function; returns an accessor for the Cluster. Also logs diagnostics after a failed
 * test. Call it before declaring other hooks: ava runs hooks declared after a serial hook once
 * it has finished, so your `test.before` hooks see a running cluster; after-hooks that still need
 * the cluster must be declared before withCluster().
 */
export function withCluster(test: TestFn, opts: ClusterOptions = {}): () => Cluster {
  let cluster: Cluster | undefined;
  const keep = opts.keep ?? process.env.PMV_CLUSTER_KEEP === "1";
  test.serial.before(async t => {
    const t0 = Date.now();
    cluster = await startCluster(opts);
    t.log(
      `cluster up (${cluster.nodes.length} nodes) in ${((Date.now() - t0) / 1000).toFixed(1)}s`,
    );
    if (opts.module) {
      const r = await deployModule({ env: opts.module.env, agent: opts.module.agent });
      t.log(
        `module Ready in ${r.moduleSeconds.toFixed(1)}s` +
          (r.agentSeconds === undefined ? "" : `, agent in ${r.agentSeconds.toFixed(1)}s`),
      );
    }
  });
  test.afterEach.always(async (t: ExecutionContext) => {
    if (!t.passed && cluster) t.log(await cluster.diagnostics());
  });
  test.serial.after.always(async t => {
    if (!cluster) return;
    if (keep) {
      t.log(
        `PMV_CLUSTER_KEEP: cluster left running (KUBECONFIG=${paths.kubeconfig}); run npm run cluster -- down`,
      );
      return;
    }
    await cluster.down();
  });
  return () => {
    if (!cluster) throw new Error("cluster not started (withCluster's test.before failed?)");
    return cluster;
  };
}

/** `kubectl get <args> -o json`, parsed; undefined when kubectl fails (e.g. NotFound). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function getJson(c: Cluster, args: string[]): Promise<any | undefined> {
  const r = await c.kubectlResult(["get", ...args, "-o", "json"]);
  return r.code === 0 ? JSON.parse(r.stdout) : undefined;
}
