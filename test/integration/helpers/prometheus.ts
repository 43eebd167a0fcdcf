// A real Prometheus for the scrape test: Debian's binary (hack/prometheus.sh installs it into the
// binary cache), run on the host (the control plane's netns, which routes to every pod CIDR and
// node), its HTTP API on a free loopback port, its data in a temporary directory.
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { REPO_ROOT } from "../../../hack/cluster/config";
import { PodLike, podTargetGroups } from "../../../hack/prometheus/scrape-config";

/** One series of an instant query's answer. */
export interface Sample {
  metric: Record<string, string>;
  value: number;
}

export interface ScrapeTarget {
  job: string;
  health: string;
  scrapeUrl: string;
  lastError: string;
}

/** Runs hack/prometheus.sh (fetches and unpacks Debian's package when not cached); its path. */
export function installPrometheus(): string {
  const script = path.join(REPO_ROOT, "hack", "prometheus.sh");
  const r = spawnSync("bash", [script], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`hack/prometheus.sh failed:\n${r.stdout}\n${r.stderr}`);
  return spawnSync("bash", [script, "--print-path"], { encoding: "utf8" }).stdout.trim();
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export class Prometheus {
  private log = "";

  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
    private readonly dir: string,
  ) {
    child.stdout?.on("data", d => (this.log += d));
    child.stderr?.on("data", d => (this.log += d));
  }

  /** Starts `binary` with the configuration text made for its directory; resolves once /-/ready
   * answers 200. */
  static async start(binary: string, config: (dir: string) => string): Promise<Prometheus> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pmv-prometheus-"));
    fs.writeFileSync(path.join(dir, "prometheus.yml"), config(dir));
    const port = await freePort();
    const child = spawn(
      binary,
      [
        `--config.file=${path.join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${path.join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const p = new Prometheus(child, `http://127.0.0.1:${port}`, dir);
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`prometheus exited:\n${p.output()}`);
      const ok = await fetch(`${p.url}/-/ready`).then(
        r => r.ok,
        () => false,
      );
      if (ok) return p;
      if (Date.now() > deadline) throw new Error(`prometheus not ready:\n${p.output()}`);
      await new Promise(r => setTimeout(r, 250));
    }
  }

  /** The last lines of its log. */
  output(lines = 40): string {
    return this.log.split("\n").slice(-lines).join("\n");
  }

  private async api<T>(pathAndQuery: string): Promise<T> {
    const r = await fetch(`${this.url}/api/v1/${pathAndQuery}`);
    const body = (await r.json()) as { status: string; data: T; error?: string };
    if (body.status !== "success") throw new Error(`${pathAndQuery}: ${body.error ?? r.status}`);
    return body.data;
  }

  /** An instant query (/api/v1/query) at the current time. */
  async query(expr: string): Promise<Sample[]> {
    const data = await this.api<{
      resultType: string;
      result: { metric: Record<string, string>; value: [number, string] }[];
    }>(`query?query=${encodeURIComponent(expr)}`);
    if (data.resultType !== "vector")
      throw new Error(`${expr}: a ${data.resultType}, not a vector`);
    return data.result.map(s => ({ metric: s.metric, value: Number(s.value[1]) }));
  }

  /** The active scrape targets with their health. */
  async targets(): Promise<ScrapeTarget[]> {
    const data = await this.api<{ activeTargets: (ScrapeTarget & { labels: { job: string } })[] }>(
      "targets?state=active",
    );
    return data.activeTargets.map(x => ({
      job: x.labels.job,
      health: x.health,
      scrapeUrl: x.scrapeUrl,
      lastError: x.lastError,
    }));
  }

  /** Stops it and removes its data. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      const exited = new Promise(r => this.child.once("exit", r));
      this.child.kill("SIGTERM");
      await Promise.race([exited, new Promise(r => setTimeout(r, 10_000))]);
      if (this.child.exitCode === null) this.child.kill("SIGKILL");
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Keeps a file for Prometheus' file discovery listing the pods `list` returns (as Kubernetes
 * discovery would: podTargetGroups), rewritten every `everyMs`; returns a function that stops it.
 */
export function podTargetsFile(
  list: () => Promise<PodLike[]>,
  file: string,
  everyMs = 2000,
): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const write = async () => {
    try {
      const text = JSON.stringify(podTargetGroups(await list()), null, 1);
      fs.writeFileSync(`${file}.tmp`, text);
      fs.renameSync(`${file}.tmp`, file);
    } catch {
      // the API server busy for a moment: the next round writes it
    }
    if (!stopped) timer = setTimeout(write, everyMs);
  };
  void write();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
