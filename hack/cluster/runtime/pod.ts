// One worker per pod bound to this node: sandbox (network namespace + CNI ADD through Multus),
// containers (host commands run inside the pod's network namespace), probes, status, and
// teardown (stop, CNI DEL, remove netns, final DELETE with a uid precondition).
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { API_PORT, HOST_IP, NodePaths, NodeSpec, podNetns } from "../config";
import { Kube, KubeError, isNotFound } from "../kube";
import {
  ProcRecord,
  isAlive,
  procStartTime,
  run,
  writeJsonAtomic,
  readJson,
  stopProcess,
} from "../proc";
import { renderKubeconfig } from "../pki";
import { CniEnv, cni, podIPsFromResult, sandboxId } from "./cni";
import { EventRecorder, rfc3339 } from "./events";
import { Prober, ProbeTarget } from "./probes";
import type { CniResult, Container, EnvVar, Pod } from "./types";

export interface RuntimeContext {
  kube: Kube;
  node: NodeSpec;
  paths: NodePaths;
  cni: CniEnv;
  /** PEM of the cluster CA (written next to service-account tokens). */
  caPem: string;
  events: EventRecorder;
  log(msg: string): void;
}

interface ContainerRecord {
  pid: number;
  startTime: string;
  startedAt: string;
}

interface Terminated {
  exitCode: number;
  signal?: string;
  reason: string;
  startedAt: string;
  finishedAt: string;
}

/** What survives a runtime restart, in pods/<uid>/state.json. */
export interface PodState {
  uid: string;
  namespace: string;
  name: string;
  hostNetwork: boolean;
  netns: string;
  containerId: string;
  startTime: string;
  cni?: { added: boolean; result?: CniResult; podIPs: string[] };
  containers: Record<string, { run?: ContainerRecord; restartCount: number; last?: Terminated }>;
  initDone: string[];
}

const PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const BACKOFF_MAX_MS = 30000;
const MAX_GRACE_S = 30;

class ContainerRun {
  child?: ChildProcess;
  record?: ContainerRecord;
  adoptTimer?: NodeJS.Timeout;
  restartCount = 0;
  last?: Terminated;
  /** Terminated and not to be restarted (restartPolicy) or an init container that succeeded. */
  done = false;
  backoffMs = 0;
  notBefore = 0;
  readiness?: Prober;
  liveness?: Prober;
  stopping = false;
  starting = false;

  constructor(
    readonly spec: Container,
    readonly init: boolean,
  ) {}

  get running(): boolean {
    return !!this.record;
  }

  ready(): boolean {
    if (!this.running) return false;
    return this.spec.readinessProbe ? !!this.readiness?.result : true;
  }
}

export class PodWorker {
  pod?: Pod;
  gone = false;
  finished = false;
  private state: PodState;
  private readonly containers = new Map<string, ContainerRun>();
  private readonly initContainers: ContainerRun[] = [];
  private running = false;
  private again = false;
  private retryTimer?: NodeJS.Timeout;
  private sandboxBackoffMs = 0;
  private sandboxNotBefore = 0;
  private delFailures = 0;
  private delNotBefore = 0;
  private tornDown = false;
  /** Deletion in progress: exited containers are not restarted. */
  private terminating = false;
  private lastStatus = "";
  private transitions = new Map<string, { status: string; time: string }>();
  private saToken?: { expires: number };

  constructor(
    private readonly ctx: RuntimeContext,
    uid: string,
    pod?: Pod,
    saved?: PodState,
  ) {
    this.pod = pod;
    this.state = saved ?? {
      uid,
      namespace: pod?.metadata.namespace ?? "",
      name: pod?.metadata.name ?? "",
      hostNetwork: !!pod?.spec.hostNetwork,
      netns: podNetns(uid),
      containerId: sandboxId(uid),
      startTime: rfc3339(),
      containers: {},
      initDone: [],
    };
    for (const c of pod?.status?.conditions ?? []) {
      this.transitions.set(c.type, { status: c.status, time: c.lastTransitionTime });
    }
  }

  get uid(): string {
    return this.state.uid;
  }

  private get dir(): string {
    return path.join(this.ctx.paths.pods, this.state.uid);
  }

  private get label(): string {
    return `${this.state.namespace}/${this.state.name}`;
  }

  private get netnsPath(): string {
    return `/run/netns/${this.state.netns}`;
  }

  private involved() {
    return { namespace: this.state.namespace, name: this.state.name, uid: this.state.uid };
  }

  static loadState(dir: string): PodState | undefined {
    return readJson<PodState>(path.join(dir, "state.json"));
  }

  private save(): void {
    for (const [name, c] of this.containers) {
      this.state.containers[name] = { run: c.record, restartCount: c.restartCount, last: c.last };
    }
    for (const c of this.initContainers) {
      this.state.containers[c.spec.name] = {
        run: c.record,
        restartCount: c.restartCount,
        last: c.last,
      };
    }
    if (this.tornDown) return;
    writeJsonAtomic(path.join(this.dir, "state.json"), this.state);
  }

  update(pod: Pod): void {
    this.pod = pod;
    if (!this.state.name) {
      this.state.namespace = pod.metadata.namespace ?? "";
      this.state.name = pod.metadata.name ?? "";
      this.state.hostNetwork = !!pod.spec.hostNetwork;
    }
    this.kick();
  }

  markGone(): void {
    this.gone = true;
    this.kick();
  }

  kick(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.running = true;
    void (async () => {
      try {
        do {
          this.again = false;
          try {
            await this.sync();
          } catch (e) {
            this.ctx.log(
              `pod ${this.label}: sync error: ${e instanceof Error ? e.stack : String(e)}`,
            );
            this.retryIn(2000);
          }
        } while (this.again);
      } finally {
        this.running = false;
      }
    })();
  }

  private retryIn(ms: number): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.kick();
    }, ms);
  }

  // ---- main loop ----------------------------------------------------------------------------

  private async sync(): Promise<void> {
    if (this.finished) return;
    const pod = this.pod;
    if (this.gone || !pod || pod.metadata.deletionTimestamp) {
      await this.terminate();
      return;
    }
    if (pod.metadata.uid !== this.state.uid) return;
    this.ensureContainerObjects(pod);
    const phase = pod.status?.phase;
    if (phase === "Succeeded" || phase === "Failed") {
      this.stopProbers();
      return;
    }
    fs.mkdirSync(this.dir, { recursive: true });
    this.save();

    if (!(await this.ensureSandbox(pod))) {
      await this.reportStatus(pod);
      return;
    }
    if (!(await this.ensureServiceAccount(pod))) {
      await this.reportStatus(pod);
      return;
    }
    if (await this.runInitContainers(pod)) await this.ensureContainers(pod);
    this.save();
    await this.reportStatus(pod);
  }

  private ensureContainerObjects(pod: Pod): void {
    if (this.containers.size || this.initContainers.length) return;
    for (const spec of pod.spec.initContainers ?? []) {
      const c = new ContainerRun(spec, true);
      this.restoreContainer(c);
      if (this.state.initDone.includes(spec.name)) c.done = true;
      this.initContainers.push(c);
    }
    for (const spec of pod.spec.containers) {
      const c = new ContainerRun(spec, false);
      this.restoreContainer(c);
      this.containers.set(spec.name, c);
    }
  }

  /** Adopts a container process that survived a runtime restart, or records its loss. */
  private restoreContainer(c: ContainerRun): void {
    const saved = this.state.containers[c.spec.name];
    if (!saved) return;
    c.restartCount = saved.restartCount;
    c.last = saved.last;
    if (!saved.run) return;
    if (isAlive(saved.run)) {
      c.record = saved.run;
      this.ctx.log(`pod ${this.label}: adopted container ${c.spec.name} (pid ${saved.run.pid})`);
      const rec = saved.run;
      c.adoptTimer = setInterval(() => {
        if (c.record === rec && !isAlive(rec)) {
          if (c.adoptTimer) clearInterval(c.adoptTimer);
          this.onExit(c, null, null);
        }
      }, 1000);
      this.startProbers(c);
    } else {
      c.last = {
        exitCode: 0,
        reason: "Unknown",
        startedAt: saved.run.startedAt,
        finishedAt: rfc3339(),
      };
    }
  }

  // ---- sandbox ------------------------------------------------------------------------------

  private async ensureSandbox(pod: Pod): Promise<boolean> {
    if (this.state.hostNetwork) return true;
    const nsExists = fs.existsSync(this.netnsPath);
    if (this.state.cni?.added && nsExists) return true;
    if (Date.now() < this.sandboxNotBefore) {
      this.retryIn(this.sandboxNotBefore - Date.now());
      return false;
    }
    if (nsExists || this.state.cni) {
      // Left over from an interrupted attempt: release what it may hold, start clean.
      await this.cniDel();
      run("ip", ["netns", "del", this.state.netns]);
    }
    const add = run("ip", ["netns", "add", this.state.netns]);
    if (add.code !== 0) throw new Error(`ip netns add ${this.state.netns}: ${add.stderr.trim()}`);
    run("ip", ["-n", this.state.netns, "link", "set", "lo", "up"]);
    this.state.cni = { added: false, podIPs: [] };
    this.save();
    const r = await cni(this.ctx.cni, {
      command: "ADD",
      pod: { namespace: this.state.namespace, name: this.state.name, uid: this.state.uid },
      containerId: this.state.containerId,
      netns: this.netnsPath,
      ifname: "eth0",
    });
    if (r.ok) {
      this.state.cni = { added: true, result: r.result, podIPs: podIPsFromResult(r.result) };
      this.sandboxBackoffMs = 0;
      this.save();
      this.ctx.log(`pod ${this.label}: sandbox ready, eth0 ${this.state.cni.podIPs.join(",")}`);
      return true;
    }
    const msg =
      `Failed to create pod sandbox: plugin type="multus" name="${this.cniName()}" failed (add): ` +
      (r.error ?? "");
    this.ctx.log(`pod ${this.label}: CNI ADD failed: ${r.error}`);
    void this.ctx.events.record(this.involved(), "Warning", "FailedCreatePodSandBox", msg);
    // As the kubelet does after a failed sandbox: tear it down (CNI DEL), retry later.
    await this.cniDel();
    run("ip", ["netns", "del", this.state.netns]);
    this.state.cni = undefined;
    this.save();
    this.sandboxBackoffMs = Math.min(Math.max(this.sandboxBackoffMs * 2, 1000), BACKOFF_MAX_MS);
    this.sandboxNotBefore = Date.now() + this.sandboxBackoffMs;
    this.retryIn(this.sandboxBackoffMs);
    void pod;
    return false;
  }

  private cniName(): string {
    try {
      const f = fs.readdirSync(this.ctx.paths.netd).sort()[0];
      return String(
        JSON.parse(fs.readFileSync(path.join(this.ctx.paths.netd, f), "utf8")).name ?? "",
      );
    } catch {
      return "";
    }
  }

  private async cniDel(): Promise<boolean> {
    const r = await cni(this.ctx.cni, {
      command: "DEL",
      pod: { namespace: this.state.namespace, name: this.state.name, uid: this.state.uid },
      containerId: this.state.containerId,
      netns: fs.existsSync(this.netnsPath) ? this.netnsPath : "",
      ifname: "eth0",
      prevResult: this.state.cni?.result,
    });
    if (!r.ok) this.ctx.log(`pod ${this.label}: CNI DEL failed: ${r.error}`);
    return r.ok;
  }

  private podIPs(): string[] {
    if (this.state.hostNetwork) return [this.ctx.node.ip];
    return this.state.cni?.added ? this.state.cni.podIPs : [];
  }

  // ---- service account token (what the kubelet's projected volume would hold) ---------------

  private async ensureServiceAccount(pod: Pod): Promise<boolean> {
    if (pod.spec.automountServiceAccountToken === false) return true;
    if (this.saToken && Date.now() < this.saToken.expires) return true;
    const sa = pod.spec.serviceAccountName || "default";
    try {
      const tr = await this.ctx.kube.create(
        `/api/v1/namespaces/${this.state.namespace}/serviceaccounts/${sa}/token`,
        {
          apiVersion: "authentication.k8s.io/v1",
          kind: "TokenRequest",
          spec: {
            // 3607 s: the kubelet's value; the apiserver extends such tokens (warnafter) to a year.
            expirationSeconds: 3607,
            boundObjectRef: {
              apiVersion: "v1",
              kind: "Pod",
              name: this.state.name,
              uid: this.state.uid,
            },
          },
        },
      );
      const token = String(tr.status.token);
      const dir = path.join(this.dir, "serviceaccount");
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, "token"), token, { mode: 0o600 });
      fs.writeFileSync(path.join(dir, "ca.crt"), this.ctx.caPem);
      fs.writeFileSync(path.join(dir, "namespace"), this.state.namespace);
      const caFile = path.join(dir, "ca.crt");
      fs.writeFileSync(
        path.join(this.dir, "kubeconfig"),
        renderKubeconfig({
          server: `https://${HOST_IP}:${API_PORT}`,
          caFile,
          user: `system:serviceaccount:${this.state.namespace}:${sa}`,
          token,
          namespace: this.state.namespace,
        }),
        { mode: 0o600 },
      );
      // Refresh well before the nominal hour (the token itself stays valid much longer).
      this.saToken = { expires: Date.now() + 45 * 60 * 1000 };
      return true;
    } catch (e) {
      const msg = `MountVolume.SetUp failed for service account token "${sa}": ${e instanceof Error ? e.message : String(e)}`;
      this.ctx.log(`pod ${this.label}: ${msg}`);
      void this.ctx.events.record(this.involved(), "Warning", "FailedMount", msg);
      this.retryIn(2000);
      return false;
    }
  }

  // ---- containers ---------------------------------------------------------------------------

  private restartPolicy(pod: Pod): "Always" | "OnFailure" | "Never" {
    return pod.spec.restartPolicy ?? "Always";
  }

  /** Runs init containers in order; true once all have succeeded. */
  private async runInitContainers(pod: Pod): Promise<boolean> {
    for (const c of this.initContainers) {
      if (c.done) continue;
      if (c.running || c.stopping) return false;
      if (c.last && c.last.exitCode !== 0 && this.restartPolicy(pod) === "Never") return false;
      if (Date.now() < c.notBefore) {
        this.retryIn(c.notBefore - Date.now());
        return false;
      }
      await this.startContainer(pod, c);
      return false;
    }
    return true;
  }

  private async ensureContainers(pod: Pod): Promise<void> {
    for (const c of this.containers.values()) {
      if (c.running || c.done || c.stopping) continue;
      if (Date.now() < c.notBefore) {
        this.retryIn(c.notBefore - Date.now());
        continue;
      }
      await this.startContainer(pod, c);
    }
  }

  private baseEnv(): Record<string, string> {
    const env: Record<string, string> = {
      PATH,
      HOME: "/root",
      HOSTNAME: this.state.name,
      KUBERNETES_SERVICE_HOST: HOST_IP,
      KUBERNETES_SERVICE_PORT: String(API_PORT),
      KUBERNETES_SERVICE_PORT_HTTPS: String(API_PORT),
      KUBERNETES_PORT: `tcp://${HOST_IP}:${API_PORT}`,
      PMV_POD_DIR: this.dir,
      PMV_NODE_NAME: this.ctx.node.name,
    };
    if (fs.existsSync(path.join(this.dir, "kubeconfig"))) {
      env.KUBECONFIG = path.join(this.dir, "kubeconfig");
      env.PMV_SERVICEACCOUNT_DIR = path.join(this.dir, "serviceaccount");
    }
    return env;
  }

  private fieldRef(pod: Pod, fieldPath: string): string {
    const m = /^metadata\.(labels|annotations)\['(.*)'\]$/.exec(fieldPath);
    if (m) return (pod.metadata[m[1] as "labels" | "annotations"] ?? {})[m[2]] ?? "";
    const ips = this.podIPs();
    switch (fieldPath) {
      case "metadata.name":
        return this.state.name;
      case "metadata.namespace":
        return this.state.namespace;
      case "metadata.uid":
        return this.state.uid;
      case "spec.nodeName":
        return this.ctx.node.name;
      case "spec.serviceAccountName":
        return pod.spec.serviceAccountName ?? "default";
      case "status.hostIP":
        return this.ctx.node.ip;
      case "status.hostIPs":
        return this.ctx.node.ip;
      case "status.podIP":
        return ips[0] ?? "";
      case "status.podIPs":
        return ips.join(",");
      default:
        throw new Error(`unsupported fieldRef ${fieldPath}`);
    }
  }

  private async keyRef(
    kind: "configmaps" | "secrets",
    ref: { name: string; key?: string; optional?: boolean },
  ) {
    try {
      const obj = await this.ctx.kube.get(
        `/api/v1/namespaces/${this.state.namespace}/${kind}/${ref.name}`,
      );
      const data: Record<string, string> = { ...(obj.data ?? {}) };
      if (kind === "secrets")
        for (const k of Object.keys(data))
          data[k] = Buffer.from(data[k], "base64").toString("utf8");
      return data;
    } catch (e) {
      if (ref.optional && isNotFound(e)) return {};
      throw e;
    }
  }

  private async containerEnv(pod: Pod, c: Container): Promise<Record<string, string>> {
    const env = this.baseEnv();
    for (const src of c.envFrom ?? []) {
      const data = src.configMapRef
        ? await this.keyRef("configmaps", src.configMapRef)
        : src.secretRef
          ? await this.keyRef("secrets", src.secretRef)
          : {};
      for (const [k, v] of Object.entries(data)) env[`${src.prefix ?? ""}${k}`] = v;
    }
    const own: Record<string, string> = {};
    const lookup = (name: string) => own[name] ?? (name in env ? env[name] : undefined);
    for (const v of c.env ?? ([] as EnvVar[])) {
      let value = v.value !== undefined ? expand(v.value, lookup) : "";
      const from = v.valueFrom;
      if (from?.fieldRef) value = this.fieldRef(pod, from.fieldRef.fieldPath);
      else if (from?.configMapKeyRef)
        value = await this.refValue("configmaps", from.configMapKeyRef);
      else if (from?.secretKeyRef) value = await this.refValue("secrets", from.secretKeyRef);
      else if (from?.resourceFieldRef) value = "0";
      own[v.name] = value;
    }
    return { ...env, ...own };
  }

  private async refValue(
    kind: "configmaps" | "secrets",
    ref: { name: string; key: string; optional?: boolean },
  ) {
    const data = await this.keyRef(kind, ref);
    if (!(ref.key in data)) {
      if (ref.optional) return "";
      throw new Error(
        `couldn't find key ${ref.key} in ${kind === "secrets" ? "Secret" : "ConfigMap"} ${this.state.namespace}/${ref.name}`,
      );
    }
    return data[ref.key];
  }

  private execPrefix(): string[] {
    return this.state.hostNetwork ? [] : ["nsenter", `--net=${this.netnsPath}`, "--"];
  }

  private async startContainer(pod: Pod, c: ContainerRun): Promise<void> {
    if (c.running || c.stopping || c.starting) return;
    c.starting = true;
    try {
      await this.spawnContainer(pod, c);
    } finally {
      c.starting = false;
    }
  }

  private async spawnContainer(pod: Pod, c: ContainerRun): Promise<void> {
    let env: Record<string, string>;
    try {
      env = await this.containerEnv(pod, c.spec);
    } catch (e) {
      const msg = `Error: ${e instanceof Error ? e.message : String(e)}`;
      void this.ctx.events.record(this.involved(), "Warning", "Failed", msg);
      this.ctx.log(`pod ${this.label}: container ${c.spec.name}: ${msg}`);
      c.notBefore = Date.now() + 5000;
      this.retryIn(5000);
      return;
    }
    if (c.running || this.tornDown || this.pod?.metadata.deletionTimestamp || this.gone) return;
    const lookup = (n: string) => env[n];
    let argv = [...(c.spec.command ?? []), ...(c.spec.args ?? [])].map(a => expand(a, lookup));
    // Images are ignored; a container without a command stands by like a pause container.
    if (!argv.length) argv = ["sleep", "infinity"];
    const full = [...this.execPrefix(), ...argv];
    const logFile = path.join(this.dir, `${c.spec.name}.log`);
    fs.mkdirSync(this.dir, { recursive: true });
    const fd = fs.openSync(logFile, "a");
    fs.writeSync(fd, `---- ${rfc3339()} start #${c.restartCount}: ${JSON.stringify(argv)}\n`);
    const cwd =
      c.spec.workingDir && fs.existsSync(c.spec.workingDir) ? c.spec.workingDir : this.dir;
    const child = spawn(full[0], full.slice(1), {
      detached: true,
      stdio: ["ignore", fd, fd],
      env,
      cwd,
    });
    fs.closeSync(fd);
    const startedAt = rfc3339();
    child.on("error", err => {
      fs.appendFileSync(logFile, `---- start failed: ${err.message}\n`);
    });
    if (child.pid === undefined) {
      c.last = { exitCode: 127, reason: "StartError", startedAt, finishedAt: rfc3339() };
      this.afterExit(c);
      return;
    }
    const startTime = procStartTime(child.pid) ?? "";
    c.child = child;
    c.record = { pid: child.pid, startTime, startedAt };
    child.on("exit", (code, signal) => {
      if (c.child === child) this.onExit(c, code, signal);
    });
    this.save();
    this.ctx.log(
      `pod ${this.label}: started ${c.init ? "init " : ""}container ${c.spec.name} pid ${child.pid}: ${JSON.stringify(argv)}`,
    );
    void this.ctx.events.record(
      this.involved(),
      "Normal",
      "Started",
      `Started container ${c.spec.name}`,
    );
    if (!c.init) this.startProbers(c);
  }

  private startProbers(c: ContainerRun): void {
    this.stopContainerProbers(c);
    const target = (): ProbeTarget | undefined => {
      const ip = this.podIPs()[0];
      if (!ip || !c.record) return undefined;
      return { podIP: ip, execPrefix: this.execPrefix(), env: this.baseEnv(), container: c.spec };
    };
    if (c.spec.readinessProbe) {
      c.readiness = new Prober(
        "readiness",
        c.spec.readinessProbe,
        target,
        () => this.kick(),
        msg =>
          void this.ctx.events.record(
            this.involved(),
            "Warning",
            "Unhealthy",
            `Readiness probe failed: ${msg}`,
          ),
      );
      c.readiness.start();
    }
    if (c.spec.livenessProbe) {
      c.liveness = new Prober(
        "liveness",
        c.spec.livenessProbe,
        target,
        ok => {
          if (ok || !c.record) return;
          const msg = `Container ${c.spec.name} failed liveness probe, will be restarted`;
          void this.ctx.events.record(this.involved(), "Normal", "Killing", msg);
          void this.stopContainer(c, this.graceSeconds());
        },
        msg =>
          void this.ctx.events.record(
            this.involved(),
            "Warning",
            "Unhealthy",
            `Liveness probe failed: ${msg}`,
          ),
      );
      c.liveness.start();
    }
  }

  private stopContainerProbers(c: ContainerRun): void {
    c.readiness?.stop();
    c.liveness?.stop();
    c.readiness = undefined;
    c.liveness = undefined;
  }

  private stopProbers(): void {
    for (const c of [...this.initContainers, ...this.containers.values()])
      this.stopContainerProbers(c);
  }

  private onExit(c: ContainerRun, code: number | null, signal: NodeJS.Signals | null): void {
    const startedAt = c.record?.startedAt ?? rfc3339();
    c.record = undefined;
    c.child = undefined;
    if (c.adoptTimer) clearInterval(c.adoptTimer);
    c.adoptTimer = undefined;
    this.stopContainerProbers(c);
    const exitCode =
      code ?? (signal ? 128 + (signal === "SIGKILL" ? 9 : signal === "SIGTERM" ? 15 : 1) : 0);
    c.last = {
      exitCode,
      ...(signal ? { signal } : {}),
      reason: exitCode === 0 ? "Completed" : "Error",
      startedAt,
      finishedAt: rfc3339(),
    };
    this.ctx.log(
      `pod ${this.label}: container ${c.spec.name} exited (code ${code}, signal ${signal})`,
    );
    this.afterExit(c);
  }

  private afterExit(c: ContainerRun): void {
    const pod = this.pod;
    if (!pod || this.tornDown || this.terminating) {
      this.save();
      this.kick();
      return;
    }
    const policy = this.restartPolicy(pod);
    const failed = (c.last?.exitCode ?? 0) !== 0;
    if (c.init) {
      if (!failed) {
        c.done = true;
        this.state.initDone.push(c.spec.name);
      } else if (policy !== "Never") {
        this.backoff(c);
      }
    } else if (policy === "Always" || (policy === "OnFailure" && failed)) {
      this.backoff(c);
    } else {
      c.done = true;
    }
    this.save();
    this.kick();
  }

  private backoff(c: ContainerRun): void {
    c.restartCount++;
    c.backoffMs = Math.min(Math.max(c.backoffMs * 2, 1000), BACKOFF_MAX_MS);
    c.notBefore = Date.now() + c.backoffMs;
  }

  private graceSeconds(): number {
    const g =
      this.pod?.metadata.deletionGracePeriodSeconds ??
      this.pod?.spec.terminationGracePeriodSeconds ??
      30;
    return Math.min(Math.max(g, 0), MAX_GRACE_S);
  }

  private async stopContainer(c: ContainerRun, graceS: number): Promise<void> {
    const rec = c.record;
    if (!rec) return;
    c.stopping = true;
    this.stopContainerProbers(c);
    const pr: ProcRecord = {
      name: c.spec.name,
      pid: rec.pid,
      startTime: rec.startTime,
      argv: [],
      group: true,
    };
    const child = c.child;
    const exited = child
      ? new Promise<void>(resolve => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once("exit", () => resolve());
          setTimeout(resolve, (graceS + 5) * 1000).unref();
        })
      : Promise.resolve();
    await stopProcess(pr, graceS * 1000);
    await exited; // let the exit handler record the real exit status
    c.stopping = false;
    if (c.record === rec) this.onExit(c, null, "SIGKILL");
    this.kick();
  }

  // ---- teardown -----------------------------------------------------------------------------

  private async terminate(): Promise<void> {
    this.terminating = true;
    if (!this.tornDown) {
      const grace = this.graceSeconds();
      this.stopProbers();
      await Promise.all(
        [...this.initContainers, ...this.containers.values()].map(c =>
          this.stopContainer(c, grace),
        ),
      );
      // Processes recorded by an earlier runtime that we never adopted (no pod object seen).
      for (const [name, saved] of Object.entries(this.state.containers)) {
        if (saved.run && isAlive(saved.run)) {
          await stopProcess(
            { name, pid: saved.run.pid, startTime: saved.run.startTime, argv: [], group: true },
            grace * 1000,
          );
        }
      }
      if (!this.state.hostNetwork && (this.state.cni || fs.existsSync(this.netnsPath))) {
        if (Date.now() < this.delNotBefore) {
          this.retryIn(this.delNotBefore - Date.now());
          return;
        }
        const ok = await this.cniDel();
        // The kubelet retries a failed teardown; give up after a few tries so a broken plugin
        // cannot keep a deleted pod around forever (the failure stays in cni.log).
        if (!ok && this.delFailures++ < 5) {
          this.delNotBefore = Date.now() + Math.min(1000 * 2 ** this.delFailures, BACKOFF_MAX_MS);
          this.retryIn(this.delNotBefore - Date.now());
          return;
        }
        run("ip", ["netns", "del", this.state.netns]);
      }
      this.tornDown = true;
      fs.rmSync(this.dir, { recursive: true, force: true });
      this.ctx.events.forget(this.state.uid);
      this.ctx.log(`pod ${this.label}: torn down`);
    }
    const pod = this.pod;
    if (
      !this.gone &&
      pod &&
      pod.metadata.deletionTimestamp &&
      pod.metadata.deletionGracePeriodSeconds !== 0
    ) {
      try {
        await this.ctx.kube.delete(
          `/api/v1/namespaces/${this.state.namespace}/pods/${this.state.name}`,
          {
            apiVersion: "v1",
            kind: "DeleteOptions",
            gracePeriodSeconds: 0,
            preconditions: { uid: this.state.uid },
          },
        );
        this.ctx.log(`pod ${this.label}: deleted (grace 0, uid ${this.state.uid})`);
      } catch (e) {
        if (!(e instanceof KubeError && (e.status === 404 || e.status === 409))) {
          this.ctx.log(`pod ${this.label}: final delete failed: ${String(e)}`);
          this.retryIn(2000);
          return;
        }
      }
    }
    if (this.gone) this.finished = true;
  }

  // ---- status -------------------------------------------------------------------------------

  private condition(type: string, ok: boolean, reason?: string) {
    const status = ok ? "True" : "False";
    const prev = this.transitions.get(type);
    const time = prev && prev.status === status ? prev.time : rfc3339();
    this.transitions.set(type, { status, time });
    return {
      type,
      status,
      lastProbeTime: null,
      lastTransitionTime: time,
      ...(reason && !ok ? { reason } : {}),
    };
  }

  private containerStatus(c: ContainerRun, waitingReason: string) {
    const state = c.record
      ? { running: { startedAt: c.record.startedAt } }
      : c.done && c.last
        ? { terminated: { ...c.last, signal: undefined, containerID: this.containerID(c) } }
        : c.last && c.notBefore > Date.now()
          ? {
              waiting: {
                reason: "CrashLoopBackOff",
                message: `back-off ${Math.round(c.backoffMs / 1000)}s restarting failed container=${c.spec.name} pod=${this.state.name}_${this.state.namespace}(${this.state.uid})`,
              },
            }
          : { waiting: { reason: waitingReason } };
    return {
      name: c.spec.name,
      image: c.spec.image ?? "",
      imageID: "",
      containerID: this.containerID(c),
      ready: c.init ? c.done : c.ready(),
      started: c.running,
      restartCount: c.restartCount,
      state,
      lastState:
        c.last && !c.done
          ? { terminated: { ...c.last, signal: undefined, containerID: this.containerID(c) } }
          : {},
    };
  }

  private containerID(c: ContainerRun): string {
    return `pmv://${this.state.containerId.slice(0, 32)}-${c.spec.name}`;
  }

  private async reportStatus(pod: Pod): Promise<void> {
    if (this.tornDown) return;
    const sandbox = this.state.hostNetwork || !!this.state.cni?.added;
    const init = this.initContainers.every(c => c.done);
    const mains = [...this.containers.values()];
    const allReady = sandbox && init && mains.length > 0 && mains.every(c => c.ready());
    const policy = this.restartPolicy(pod);
    let phase = "Pending";
    if (sandbox && init && mains.length) {
      const finished = mains.every(c => c.done);
      if (finished) phase = mains.every(c => c.last?.exitCode === 0) ? "Succeeded" : "Failed";
      else if (mains.some(c => c.running || c.last)) phase = "Running";
    }
    if (
      sandbox &&
      this.initContainers.some(c => c.last && c.last.exitCode !== 0 && policy === "Never")
    )
      phase = "Failed";
    const ips = this.podIPs();
    const notReadyReason = !init ? "ContainersNotInitialized" : "ContainersNotReady";
    const status = {
      phase,
      hostIP: this.ctx.node.ip,
      hostIPs: [{ ip: this.ctx.node.ip }],
      ...(ips.length ? { podIP: ips[0], podIPs: ips.map(ip => ({ ip })) } : {}),
      startTime: this.state.startTime,
      conditions: [
        this.condition("PodReadyToStartContainers", sandbox),
        this.condition("Initialized", init, "ContainersNotInitialized"),
        this.condition("Ready", allReady, notReadyReason),
        this.condition("ContainersReady", allReady, notReadyReason),
      ],
      ...(this.initContainers.length
        ? {
            initContainerStatuses: this.initContainers.map(c =>
              this.containerStatus(c, "PodInitializing"),
            ),
          }
        : {}),
      containerStatuses: mains.map(c =>
        this.containerStatus(
          c,
          sandbox && !init && this.initContainers.length ? "PodInitializing" : "ContainerCreating",
        ),
      ),
    };
    const key = JSON.stringify(status);
    if (key === this.lastStatus) return;
    try {
      await this.ctx.kube.patch<Pod>(
        `/api/v1/namespaces/${this.state.namespace}/pods/${this.state.name}/status`,
        { metadata: { uid: this.state.uid }, status },
        "strategic",
      );
      this.lastStatus = key;
      if (phase === "Succeeded" || phase === "Failed") this.stopProbers();
    } catch (e) {
      if (isNotFound(e)) return;
      this.ctx.log(`pod ${this.label}: status update failed: ${String(e)}`);
      this.retryIn(2000);
    }
  }
}

/** Kubernetes' $(VAR) expansion: defined variables are substituted, $$ escapes a $. */
export function expand(s: string, lookup: (name: string) => string | undefined): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name: string | undefined) => {
    if (m === "$$") return "$";
    const v = name ? lookup(name) : undefined;
    return v ?? m;
  });
}
