// Running commands, starting detached daemons and stopping them again by recorded pid.
// A pid is only ever signalled after checking that it still names the process we started
// (its start time in /proc/<pid>/stat matches the recorded one), so a recycled pid is safe.
import { spawn, spawnSync, SpawnSyncOptions } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
}

/** Runs a command to completion (synchronously) and returns its output; never throws on exit codes. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): RunResult {
  const o: SpawnSyncOptions = {
    input: opts.input,
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    encoding: "utf8",
    timeout: opts.timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
  };
  const r = spawnSync(cmd, args, o);
  if (r.error) return { code: 127, stdout: "", stderr: String(r.error.message) };
  return {
    code: r.status ?? 128 + (r.signal ? 9 : 0),
    stdout: String(r.stdout ?? ""),
    stderr: String(r.stderr ?? ""),
  };
}

export class CommandError extends Error {
  constructor(
    readonly cmd: string,
    readonly result: RunResult,
  ) {
    super(`${cmd} failed (exit ${result.code}): ${(result.stderr || result.stdout).trim()}`);
  }
}

/** Like run() but throws CommandError on a non-zero exit. Returns stdout. */
export function runOk(cmd: string, args: string[], opts: RunOptions = {}): string {
  const r = run(cmd, args, opts);
  if (r.code !== 0) throw new CommandError([cmd, ...args].join(" "), r);
  return r.stdout;
}

/** Asynchronous variant of run(), for callers that must not block their event loop. */
export function runAsync(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise(resolve => {
    const child = spawn(cmd, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs) {
      timer = setTimeout(() => {
        stderr += `\n[timed out after ${opts.timeoutMs} ms]`;
        child.kill("SIGKILL");
      }, opts.timeoutMs);
    }
    child.stdout.setEncoding("utf8").on("data", d => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", d => (stderr += d));
    child.on("error", err => {
      if (timer) clearTimeout(timer);
      resolve({ code: 127, stdout, stderr: stderr + String(err.message) });
    });
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 + 9 : 1), stdout, stderr });
    });
    child.stdin.on("error", () => undefined);
    child.stdin.end(opts.input ?? "");
  });
}

// ---- process identity --------------------------------------------------------------------------

/** Start time of a process (clock ticks since boot, field 22 of /proc/<pid>/stat), or undefined. */
export function procStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // comm (field 2) may contain spaces and parentheses: split after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (rest[0] === "Z") return undefined; // a zombie is as good as gone
    return rest[19];
  } catch {
    return undefined;
  }
}

/** Resident set size of a process in KiB (VmRSS), or 0. */
export function procRssKiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** A process we started, as recorded on disk. */
export interface ProcRecord {
  name: string;
  pid: number;
  startTime: string;
  argv: string[];
  log?: string;
  /** The process leads its own process group (started detached): signal the whole group. */
  group: boolean;
}

export function isAlive(rec: Pick<ProcRecord, "pid" | "startTime">): boolean {
  return procStartTime(rec.pid) === rec.startTime;
}

export interface DaemonOptions {
  name: string;
  cmd: string;
  args: string[];
  log: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Directory where the ProcRecord is written as <name>.json. */
  recordDir: string;
}

/** Starts a detached daemon (own session and process group), output appended to a log file. */
export function startDaemon(o: DaemonOptions): ProcRecord {
  fs.mkdirSync(path.dirname(o.log), { recursive: true });
  fs.mkdirSync(o.recordDir, { recursive: true });
  const fd = fs.openSync(o.log, "a");
  const child = spawn(o.cmd, o.args, {
    detached: true,
    stdio: ["ignore", fd, fd],
    env: o.env ?? process.env,
    cwd: o.cwd,
  });
  fs.closeSync(fd);
  if (child.pid === undefined) throw new Error(`could not start ${o.name} (${o.cmd})`);
  child.unref();
  const pid = child.pid;
  let startTime = procStartTime(pid);
  for (let i = 0; !startTime && i < 50; i++) startTime = procStartTime(pid);
  if (!startTime) throw new Error(`${o.name} exited immediately; see ${o.log}`);
  const rec: ProcRecord = {
    name: o.name,
    pid,
    startTime,
    argv: [o.cmd, ...o.args],
    log: o.log,
    group: true,
  };
  writeJsonAtomic(path.join(o.recordDir, `${o.name}.json`), rec);
  return rec;
}

const sleepMs = (ms: number) => new Promise(r => setTimeout(r, ms));

/**
 * Stops a recorded process: SIGTERM (to its process group when it leads one), then SIGKILL after
 * `graceMs`. Returns true if it was running.
 */
export async function stopProcess(rec: ProcRecord, graceMs = 5000): Promise<boolean> {
  if (!isAlive(rec)) return false;
  const target = rec.group ? -rec.pid : rec.pid;
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(target, sig);
    } catch {
      // group already gone: fall back to the process itself
      try {
        process.kill(rec.pid, sig);
      } catch {
        /* gone */
      }
    }
  };
  signal("SIGTERM");
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isAlive(rec)) break;
    await sleepMs(100);
  }
  if (rec.group) {
    // also reap what is left of the group (children of the leader)
    try {
      process.kill(-rec.pid, "SIGKILL");
    } catch {
      /* empty group */
    }
  }
  if (isAlive(rec)) signal("SIGKILL");
  for (let i = 0; i < 50 && isAlive(rec); i++) await sleepMs(100);
  return true;
}

export function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as T;
  } catch {
    return undefined;
  }
}

export function writeJsonAtomic(file: string, data: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(data, null, 2) + "\n");
  fs.renameSync(tmp, file);
}

/** All ProcRecords in a directory. */
export function readProcRecords(dir: string): ProcRecord[] {
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir).filter(n => n.endsWith(".json"));
  } catch {
    return [];
  }
  return names.flatMap(n => {
    const r = readJson<ProcRecord>(path.join(dir, n));
    return r ? [r] : [];
  });
}

/** Inode of a network namespace file (`/run/netns/<name>` or `/proc/<pid>/ns/net`). */
export function netnsInode(file: string): number | undefined {
  try {
    return fs.statSync(file).ino;
  } catch {
    return undefined;
  }
}

/** Pids of all processes whose network namespace is one of the given inodes. */
export function pidsInNetns(inodes: Set<number>): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    const ino = netnsInode(`/proc/${pid}/ns/net`);
    if (ino !== undefined && inodes.has(ino)) out.push(pid);
  }
  return out;
}

/**
 * Pids of a pod's container processes (not its pause process), found by the pod's cgroup: the
 * kubelet puts every container of pod `<uid>` under `…/pod<uid>/…` (cgroupfs driver; the systemd
 * driver writes the uid with underscores). For fault injection (`kill -9`) in the chaos suite.
 */
export function podProcesses(uid: string): number[] {
  const marks = [`pod${uid}`, `pod${uid.replace(/-/g, "_")}`];
  const out: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let cgroup = "";
    let cmd = "";
    try {
      cgroup = fs.readFileSync(`/proc/${entry}/cgroup`, "utf8");
      cmd = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0")[0] ?? "";
    } catch {
      continue;
    }
    if (!marks.some(m => cgroup.includes(`/${m}/`))) continue;
    if (path.basename(cmd) === "pause") continue;
    out.push(Number(entry));
  }
  return out;
}
