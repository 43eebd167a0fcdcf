// Container probes as the kubelet runs them: tcpSocket and httpGet from the node's network
// namespace (where this runtime runs) to the pod IP (or probe host), exec inside the pod's
// network namespace.
import * as http from "node:http";
import * as https from "node:https";
import * as net from "node:net";
import { runAsync } from "../proc";
import type { Container, Probe } from "./types";

export interface ProbeTarget {
  podIP: string;
  /** Prefix that runs a command in the pod's network namespace (empty for hostNetwork pods). */
  execPrefix: string[];
  env: NodeJS.ProcessEnv;
  container: Container;
}

export interface ProbeOutcome {
  ok: boolean;
  message: string;
}

function resolvePort(port: number | string, c: Container): number {
  if (typeof port === "number") return port;
  if (/^\d+$/.test(port)) return Number(port);
  const p = (c.ports ?? []).find(x => x.name === port);
  if (!p) throw new Error(`port "${port}" not found in container ${c.name}`);
  return p.containerPort;
}

const hostForUrl = (h: string) => (h.includes(":") ? `[${h}]` : h);

export async function runProbe(probe: Probe, t: ProbeTarget): Promise<ProbeOutcome> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  try {
    if (probe.tcpSocket) {
      const host = probe.tcpSocket.host || t.podIP;
      const port = resolvePort(probe.tcpSocket.port, t.container);
      await new Promise<void>((resolve, reject) => {
        const s = net.connect({ host, port });
        const timer = setTimeout(() => {
          s.destroy();
          reject(new Error(`dial tcp ${hostForUrl(host)}:${port}: i/o timeout`));
        }, timeoutMs);
        s.once("connect", () => {
          clearTimeout(timer);
          s.destroy();
          resolve();
        });
        s.once("error", err => {
          clearTimeout(timer);
          reject(new Error(`dial tcp ${hostForUrl(host)}:${port}: ${err.message}`));
        });
      });
      return { ok: true, message: "" };
    }
    if (probe.httpGet) {
      const g = probe.httpGet;
      const host = g.host || t.podIP;
      const port = resolvePort(g.port, t.container);
      const scheme = (g.scheme ?? "HTTP").toLowerCase();
      const url = `${scheme}://${hostForUrl(host)}:${port}${g.path ?? "/"}`;
      const headers: Record<string, string> = { "User-Agent": "kube-probe/1.34", Accept: "*/*" };
      for (const h of g.httpHeaders ?? []) headers[h.name] = h.value;
      const status = await new Promise<number>((resolve, reject) => {
        const mod = scheme === "https" ? https : http;
        const req = mod.get(
          url,
          { headers, timeout: timeoutMs, rejectUnauthorized: false },
          res => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on("timeout", () => req.destroy(new Error(`Get "${url}": context deadline exceeded`)));
        req.on("error", err => reject(new Error(`Get "${url}": ${err.message}`)));
      });
      if (status >= 200 && status < 400) return { ok: true, message: "" };
      return { ok: false, message: `HTTP probe failed with statuscode: ${status}` };
    }
    if (probe.exec) {
      const cmd = probe.exec.command ?? [];
      if (!cmd.length) return { ok: false, message: "exec probe without command" };
      const argv = [...t.execPrefix, ...cmd];
      const r = await runAsync(argv[0], argv.slice(1), { env: t.env, timeoutMs });
      if (r.code === 0) return { ok: true, message: "" };
      return {
        ok: false,
        message: `command ${JSON.stringify(cmd)} exited with ${r.code}: ${(r.stdout + r.stderr).trim().slice(0, 300)}`,
      };
    }
    // grpc probes are not implemented: report success rather than block the pod forever.
    return {
      ok: true,
      message: "probe type not supported by the pmv node runtime: assumed healthy",
    };
  } catch (e) {
    return { ok: false, message: e instanceof Error ? e.message : String(e) };
  }
}

/**
 * Runs a probe periodically and keeps its result with the kubelet's thresholds. `onChange` is
 * called when the result flips; `onFailure` on every failed attempt.
 */
export class Prober {
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private successes = 0;
  private failures = 0;
  result: boolean;
  lastMessage = "";

  constructor(
    readonly kind: "readiness" | "liveness",
    private readonly probe: Probe,
    private readonly target: () => ProbeTarget | undefined,
    private readonly onChange: (ok: boolean) => void,
    private readonly onFailure: (message: string) => void,
  ) {
    // Readiness starts failing, liveness starts healthy (as in the kubelet).
    this.result = kind === "liveness";
  }

  start(): void {
    const delay = (this.probe.initialDelaySeconds ?? 0) * 1000;
    this.timer = setTimeout(() => void this.tick(), delay);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    const t = this.target();
    if (t) {
      const r = await runProbe(this.probe, t);
      if (this.stopped) return;
      this.lastMessage = r.message;
      if (r.ok) {
        this.successes++;
        this.failures = 0;
        const need = this.kind === "liveness" ? 1 : (this.probe.successThreshold ?? 1);
        if (!this.result && this.successes >= need) this.set(true);
      } else {
        this.failures++;
        this.successes = 0;
        this.onFailure(r.message);
        if (this.result && this.failures >= (this.probe.failureThreshold ?? 3)) this.set(false);
      }
    }
    if (!this.stopped)
      this.timer = setTimeout(() => void this.tick(), (this.probe.periodSeconds ?? 10) * 1000);
  }

  private set(ok: boolean): void {
    this.result = ok;
    this.onChange(ok);
  }
}
