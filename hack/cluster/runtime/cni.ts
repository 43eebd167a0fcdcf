// CNI calls as the kubelet's container runtime makes them (libcni semantics): the first network
// configuration in the node's conf dir (lexical order), each plugin of a conflist in turn
// (ADD forwards prevResult, DEL runs in reverse), CNI_* environment, config on stdin.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { runAsync } from "../proc";
import type { CniResult } from "./types";

export interface CniPod {
  namespace: string;
  name: string;
  uid: string;
}

export interface CniCall {
  command: "ADD" | "DEL" | "CHECK";
  pod: CniPod;
  containerId: string;
  netns: string;
  ifname: string;
  prevResult?: CniResult;
}

export interface CniOutcome {
  ok: boolean;
  result?: CniResult;
  error?: string;
  durationMs: number;
}

/** The sandbox ("infra container") id the runtime uses for a pod: stable across restarts. */
export const sandboxId = (podUID: string) =>
  createHash("sha256").update(`pmv-sandbox:${podUID}`).digest("hex");

/** Loads the network configuration the kubelet would use: the first file of confDir. */
export function loadNetworkConfig(confDir: string): {
  file: string;
  plugins: Record<string, unknown>[];
  name: string;
  cniVersion: string;
} {
  const files = fs
    .readdirSync(confDir)
    .filter(f => /\.(conf|conflist|json)$/.test(f))
    .sort();
  if (!files.length) throw new Error(`no CNI configuration in ${confDir}`);
  const file = path.join(confDir, files[0]);
  const conf = JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>;
  const cniVersion = String(conf.cniVersion ?? "1.0.0");
  const name = String(conf.name ?? "");
  if (Array.isArray(conf.plugins)) {
    return { file, name, cniVersion, plugins: conf.plugins as Record<string, unknown>[] };
  }
  return { file, name, cniVersion, plugins: [conf] };
}

export interface CniEnv {
  confDir: string;
  /** Directories searched for plugin binaries (CNI_PATH). */
  binDirs: string[];
  /** One JSON line per call is appended here. */
  logFile: string;
  node: string;
  timeoutMs?: number;
}

function cniArgs(pod: CniPod, containerId: string): string {
  return [
    "IgnoreUnknown=1",
    `K8S_POD_NAMESPACE=${pod.namespace}`,
    `K8S_POD_NAME=${pod.name}`,
    `K8S_POD_INFRA_CONTAINER_ID=${containerId}`,
    `K8S_POD_UID=${pod.uid}`,
  ].join(";");
}

function findPlugin(type: string, binDirs: string[]): string | undefined {
  for (const d of binDirs) {
    const p = path.join(d, type);
    if (fs.existsSync(p)) return p;
  }
  return undefined;
}

async function execPlugin(
  env: CniEnv,
  call: CniCall,
  conf: Record<string, unknown>,
): Promise<{ ok: boolean; out?: CniResult; error?: string }> {
  const type = String(conf.type ?? "");
  const exe = findPlugin(type, env.binDirs);
  if (!exe)
    return {
      ok: false,
      error: `failed to find plugin "${type}" in path [${env.binDirs.join(" ")}]`,
    };
  const r = await runAsync(exe, [], {
    input: JSON.stringify(conf),
    timeoutMs: env.timeoutMs ?? 120000,
    env: {
      PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
      CNI_COMMAND: call.command,
      CNI_CONTAINERID: call.containerId,
      CNI_NETNS: call.netns,
      CNI_IFNAME: call.ifname,
      CNI_PATH: env.binDirs.join(":"),
      CNI_ARGS: cniArgs(call.pod, call.containerId),
    },
  });
  if (r.code === 0) {
    if (call.command !== "ADD") return { ok: true };
    try {
      return { ok: true, out: JSON.parse(r.stdout) as CniResult };
    } catch {
      return { ok: false, error: `plugin ${type}: unparsable result: ${r.stdout.slice(0, 500)}` };
    }
  }
  let msg = (r.stdout || r.stderr).trim();
  try {
    const e = JSON.parse(r.stdout) as { code?: number; msg?: string; details?: string };
    msg =
      [e.msg, e.details].filter(Boolean).join(": ") +
      (e.code !== undefined ? ` (CNI error ${e.code})` : "");
  } catch {
    /* not JSON */
  }
  if (!msg) msg = `exit ${r.code}`;
  return {
    ok: false,
    error: `plugin type="${type}" name="${String(conf.name ?? "")}" failed (${call.command.toLowerCase()}): ${msg}`,
  };
}

/** Runs one CNI operation for a pod against the node's network configuration and logs it. */
export async function cni(env: CniEnv, call: CniCall): Promise<CniOutcome> {
  const t0 = Date.now();
  let outcome: CniOutcome;
  let confFile = "";
  try {
    const net = loadNetworkConfig(env.confDir);
    confFile = net.file;
    const plugins = call.command === "DEL" ? [...net.plugins].reverse() : net.plugins;
    let prev: CniResult | undefined = call.prevResult;
    let error: string | undefined;
    for (const p of plugins) {
      const conf: Record<string, unknown> = { ...p, name: net.name, cniVersion: net.cniVersion };
      if (prev) conf.prevResult = prev;
      const r = await execPlugin(env, call, conf);
      if (!r.ok) {
        error = r.error;
        if (call.command !== "DEL") break;
        continue; // DEL: keep going, report the first error
      }
      if (call.command === "ADD") prev = r.out;
    }
    outcome = error
      ? { ok: false, error, durationMs: Date.now() - t0 }
      : {
          ok: true,
          result: call.command === "ADD" ? prev : undefined,
          durationMs: Date.now() - t0,
        };
  } catch (e) {
    outcome = {
      ok: false,
      error: e instanceof Error ? e.message : String(e),
      durationMs: Date.now() - t0,
    };
  }
  const line = {
    time: new Date().toISOString(),
    node: env.node,
    command: call.command,
    pod: `${call.pod.namespace}/${call.pod.name}`,
    uid: call.pod.uid,
    containerId: call.containerId,
    netns: call.netns,
    ifname: call.ifname,
    config: confFile,
    ok: outcome.ok,
    durationMs: outcome.durationMs,
    ...(outcome.ok ? { result: outcome.result } : { error: outcome.error }),
  };
  fs.appendFileSync(env.logFile, JSON.stringify(line) + "\n");
  return outcome;
}

/** The pod's addresses on eth0 (the cluster network) from a CNI result. */
export function podIPsFromResult(result: CniResult | undefined, ifname = "eth0"): string[] {
  if (!result?.ips) return [];
  const ifaces = result.interfaces ?? [];
  const onIf = result.ips.filter(ip => {
    if (ip.interface === undefined) return false;
    const iface = ifaces[ip.interface];
    return iface?.name === ifname && !!iface.sandbox;
  });
  const chosen = onIf.length ? onIf : result.ips;
  return chosen.map(ip => ip.address.split("/")[0]);
}
