// CPU seconds and peak RSS of the components during one set-up, read from /proc (the nodes are
// network namespaces only: every process of the cluster, also in containers, is in this /proc).
// CPU is utime+stime; containerd's also counts its reaped children (cutime+cstime): the CNI plugins
// it runs (Multus, macvlan, host-local, whereabouts) are such children. Peak RSS is the highest sum
// of the group's VmRSS over samples every 2 s.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { paths } from "../../hack/cluster/config";
import { readProcRecords } from "../../hack/cluster/proc";

const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

interface ProcRead {
  ticks: number;
  rssKiB: number;
}

function readProc(pid: number, children: boolean): ProcRead | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields after ")": state=0 … utime=11 stime=12 cutime=13 cstime=14
    let ticks = Number(f[11]) + Number(f[12]);
    if (children) ticks += Number(f[13]) + Number(f[14]);
    const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return { ticks, rssKiB: m ? Number(m[1]) : 0 };
  } catch {
    return undefined;
  }
}

function argv(pid: string): string[] {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    return [];
  }
}

function isWatcher(pid: string): boolean {
  try {
    return /(^|\0)PEPR_WATCH_MODE=true(\0|$)/.test(fs.readFileSync(`/proc/${pid}/environ`, "utf8"));
  } catch {
    return false;
  }
}

/** Which component a process belongs to (undefined: not measured). */
function groupOf(pid: string, a: string[]): string | undefined {
  const cmd = a.join(" ");
  if (/\/app\/node_modules\/pepr\/dist\/controller\.js|\/app\/module-/.test(cmd))
    return isWatcher(pid) ? "pepr watcher (node)" : "pepr admission (node, 2 pods)";
  if (/agent\.js/.test(cmd) && a[0]?.endsWith("node")) return "pepr-macvlan agent (node)";
  if (a[0]?.endsWith("ip-control-loop")) return "whereabouts controlloop";
  return undefined;
}

/** Control-plane and node daemons we started (hack/cluster proc records). */
function recordGroups(): Map<number, string> {
  const out = new Map<number, string>();
  for (const r of readProcRecords(paths.procs)) {
    if (["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"].includes(r.name))
      out.set(r.pid, r.name);
    else if (r.name.startsWith("kubelet-")) out.set(r.pid, "kubelets");
    else if (r.name.startsWith("containerd-")) out.set(r.pid, "containerd (+ CNI plugins it ran)");
  }
  return out;
}

export interface ComponentUsage {
  group: string;
  processes: number;
  cpuSeconds: number;
  peakRssMiB: number;
}

/** Samples every 2 s from start() to stop(). */
export class ProcSampler {
  private first = new Map<string, number>();
  private last = new Map<string, { ticks: number; group: string }>();
  private peak = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  private records = new Map<number, string>();

  start(): void {
    this.records = recordGroups();
    this.sample(true);
    this.timer = setInterval(() => this.sample(false), 2000);
  }

  private sample(initial: boolean): void {
    const rss = new Map<string, number>();
    for (const e of fs.readdirSync("/proc")) {
      if (!/^\d+$/.test(e)) continue;
      const pid = Number(e);
      const group = this.records.get(pid) ?? groupOf(e, argv(e));
      if (!group) continue;
      const p = readProc(pid, group.startsWith("containerd"));
      if (!p) continue;
      const key = `${pid}`;
      if (!this.first.has(key)) this.first.set(key, initial ? p.ticks : 0);
      this.last.set(key, { ticks: p.ticks, group });
      rss.set(group, (rss.get(group) ?? 0) + p.rssKiB);
    }
    for (const [g, kib] of rss) this.peak.set(g, Math.max(this.peak.get(g) ?? 0, kib));
  }

  stop(): ComponentUsage[] {
    if (this.timer) clearInterval(this.timer);
    this.sample(false);
    const out = new Map<string, ComponentUsage>();
    for (const [key, l] of this.last) {
      const u = out.get(l.group) ?? {
        group: l.group,
        processes: 0,
        cpuSeconds: 0,
        peakRssMiB: (this.peak.get(l.group) ?? 0) / 1024,
      };
      u.processes++;
      u.cpuSeconds += (l.ticks - (this.first.get(key) ?? 0)) / CLK_TCK;
      out.set(l.group, u);
    }
    return [...out.values()].sort((a, b) => a.group.localeCompare(b.group));
  }
}

export interface ModuleProcess {
  role: "watcher" | "admission";
  /** The pod's uid, from the process's cgroup path (…/pod<uid>/…). */
  podUid: string;
  rssKiB: number;
}

/** RSS of each of the module's node processes now (bench:scale reads it per replica). */
export function moduleProcesses(): ModuleProcess[] {
  const out: ModuleProcess[] = [];
  for (const e of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    const group = groupOf(e, argv(e));
    if (!group?.startsWith("pepr watcher") && !group?.startsWith("pepr admission")) continue;
    const p = readProc(Number(e), false);
    let cgroup = "";
    try {
      cgroup = fs.readFileSync(`/proc/${e}/cgroup`, "utf8");
    } catch {
      continue;
    }
    const uid = /pod([0-9a-f]{8}[-_][0-9a-f_-]{27})/.exec(cgroup)?.[1]?.replace(/_/g, "-");
    if (!p || !uid) continue;
    out.push({ role: isWatcher(e) ? "watcher" : "admission", podUid: uid, rssKiB: p.rssKiB });
  }
  return out;
}
