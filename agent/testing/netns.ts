// Test helpers: a tiny simulated LAN in network namespaces (test traffic only on
// 198.18.0.0/15 and 2001:db8::/32, namespace names prefixed `pmvt-`). Not part of the agent.
//
//   pmvt-<id>-lan : bridge br0 (the switch) + the LAN router 198.18.0.1/16, 198.18.100.1/24
//   pmvt-<id>-node: eth0 (veth into br0), 198.18.0.11/16 — the node the agent runs on
//   pmvt-<id>-<p> : a pod with net1 = macvlan on the node's eth0 (as the macvlan CNI makes it)
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], timeoutMs = 15_000): Promise<RunResult> {
  return new Promise(resolve => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: "utf8" }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export async function must(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Why netns tests cannot run here (not root, no netns, no bridge), or undefined when they can. */
export function netnsUnavailableSync(): string | undefined {
  if (process.platform !== "linux") return "not Linux";
  if (process.getuid?.() !== 0) return "not root";
  const quiet = { stdio: "pipe" as const, timeout: 10_000 };
  const probe = `pmvt-probe-${process.pid}`;
  try {
    execFileSync("ip", ["netns", "add", probe], quiet);
  } catch (e) {
    return `ip netns add failed: ${String((e as { stderr?: Buffer }).stderr ?? e).trim()}`;
  }
  try {
    execFileSync("ip", ["-n", probe, "link", "add", "br0", "type", "bridge"], quiet);
    execFileSync(
      "ip",
      ["-n", probe, "link", "add", "v0", "type", "veth", "peer", "name", "v1"],
      quiet,
    );
    execFileSync(
      "ip",
      ["-n", probe, "link", "add", "link", "v0", "name", "m0", "type", "macvlan", "mode", "bridge"],
      quiet,
    );
  } catch (e) {
    return `bridge, veth or macvlan missing: ${String((e as { stderr?: Buffer }).stderr ?? e).trim()}`;
  } finally {
    execFileSync("ip", ["netns", "del", probe], quiet);
  }
  try {
    execFileSync("sh", ["-c", "command -v ping"], quiet);
  } catch {
    return "no ping binary (apt-get install iputils-ping)";
  }
  return undefined;
}

/** Deletes namespaces left by an earlier, killed run of the same test file. */
export async function sweep(prefix: string): Promise<void> {
  const out = await run("ip", ["netns", "list"]);
  for (const line of out.stdout.split("\n")) {
    const name = line.split(" ")[0];
    if (name?.startsWith(prefix)) await run("ip", ["netns", "del", name]);
  }
}

export interface PodSpec {
  /** Short name, becomes part of the netns name. */
  name: string;
  /** `198.18.100.5/24` */
  cidr: string;
  gateway?: string;
  /** Extra routes in the pod, e.g. an on-link /128 to the node. */
  routes?: string[][];
  /** The lower device in the node netns (default eth0). */
  parent?: string;
}

export class TestLan {
  readonly lan: string;
  readonly node: string;
  private readonly pods = new Map<string, string>();
  private readonly children: ChildProcess[] = [];
  private hasPing?: boolean;

  constructor(readonly id: string) {
    this.lan = `pmvt-${id}-lan`;
    this.node = `pmvt-${id}-node`;
  }

  podNs(name: string): string {
    return `pmvt-${this.id}-${name}`;
  }

  ipn(ns: string, args: string[]): Promise<string> {
    return must("ip", ["-n", ns, ...args]);
  }

  exec(ns: string, args: string[], timeoutMs?: number): Promise<RunResult> {
    return run("ip", ["netns", "exec", ns, ...args], timeoutMs);
  }

  async sysctl(ns: string, key: string, value: string): Promise<void> {
    const r = await this.exec(ns, ["sh", "-c", `echo ${value} > /proc/sys/${key}`]);
    if (r.code !== 0) throw new Error(`sysctl ${key}=${value} in ${ns}: ${r.stderr}`);
  }

  /** LAN switch + router, and the node on it. */
  async up(
    opts: { nodeCidrs?: string[]; routerCidrs?: string[]; nodeGateway?: string } = {},
  ): Promise<void> {
    const nodeCidrs = opts.nodeCidrs ?? ["198.18.0.11/16"];
    const routerCidrs = opts.routerCidrs ?? ["198.18.0.1/16", "198.18.100.1/24"];
    await must("ip", ["netns", "add", this.lan]);
    await must("ip", ["netns", "add", this.node]);
    for (const ns of [this.lan, this.node]) await this.ipn(ns, ["link", "set", "lo", "up"]);
    await this.ipn(this.lan, ["link", "add", "br0", "type", "bridge"]);
    await this.ipn(this.lan, ["link", "set", "br0", "up"]);
    await this.sysctl(this.lan, "net/ipv4/ip_forward", "1");
    await this.sysctl(this.lan, "net/ipv6/conf/all/forwarding", "1");
    for (const c of routerCidrs)
      await this.ipn(this.lan, ["addr", "add", c, "dev", "br0", ...nodad(c)]);
    await this.ipn(this.lan, [
      "link",
      "add",
      "eth0",
      "netns",
      this.node,
      "type",
      "veth",
      "peer",
      "name",
      "p-node",
    ]);
    await this.ipn(this.lan, ["link", "set", "p-node", "master", "br0", "up"]);
    await this.ipn(this.node, ["link", "set", "eth0", "up"]);
    for (const c of nodeCidrs)
      await this.ipn(this.node, ["addr", "add", c, "dev", "eth0", ...nodad(c)]);
    if (opts.nodeGateway)
      await this.ipn(this.node, ["route", "add", "default", "via", opts.nodeGateway]);
  }

  /** A pod whose net1 is a macvlan (mode bridge) on the node's parent, like the CNI makes it. */
  async addPod(p: PodSpec): Promise<string> {
    const ns = this.podNs(p.name);
    await must("ip", ["netns", "add", ns]);
    this.pods.set(p.name, ns);
    await this.ipn(ns, ["link", "set", "lo", "up"]);
    const tmp = `pmvt-n1-${p.name}`.slice(0, 15);
    await this.ipn(this.node, [
      "link",
      "add",
      "link",
      p.parent ?? "eth0",
      "name",
      tmp,
      "type",
      "macvlan",
      "mode",
      "bridge",
    ]);
    await this.ipn(this.node, ["link", "set", tmp, "netns", ns]);
    await this.ipn(ns, ["link", "set", tmp, "name", "net1"]);
    await this.ipn(ns, ["addr", "add", p.cidr, "dev", "net1", ...nodad(p.cidr)]);
    await this.ipn(ns, ["link", "set", "net1", "up"]);
    if (p.gateway) await this.ipn(ns, ["route", "add", "default", "via", p.gateway, "dev", "net1"]);
    for (const r of p.routes ?? []) await this.ipn(ns, ["route", "add", ...r]);
    return ns;
  }

  async delPod(name: string): Promise<void> {
    const ns = this.pods.get(name);
    if (ns) await run("ip", ["netns", "del", ns]);
    this.pods.delete(name);
  }

  /** One ICMP echo (ping, 1 s wait); falls back to false when there is no ping binary. */
  async ping(fromNs: string, ip: string, tries = 2): Promise<boolean> {
    this.hasPing ??= (await run("sh", ["-c", "command -v ping"])).code === 0;
    if (!this.hasPing) throw new Error("no ping binary (apt-get install iputils-ping)");
    for (let i = 0; i < tries; i++) {
      const r = await this.exec(fromNs, ["ping", "-n", "-c", "1", "-W", "1", ip], 5_000);
      if (r.code === 0) return true;
    }
    return false;
  }

  /** A TCP echo server in a netns: answers every connection with `hello from <ns>`. */
  async listen(ns: string, port: number): Promise<void> {
    const js = `require("net").createServer(s=>{s.end("hello from ${ns}\\n")}).listen(${port},"::",()=>console.log("ready"))`;
    const child = spawn("ip", ["netns", "exec", ns, process.execPath, "-e", js], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    this.children.push(child);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`listener in ${ns} did not start`)), 20_000);
      child.stdout!.on("data", (d: Buffer) => {
        if (d.toString().includes("ready")) {
          clearTimeout(t);
          resolve();
        }
      });
      child.on("exit", c => reject(new Error(`listener in ${ns} exited ${c}`)));
    });
  }

  /** Connects from a netns (bash /dev/tcp, 3 s) and returns what the server said, or undefined. */
  async tcp(fromNs: string, ip: string, port: number): Promise<string | undefined> {
    const host = ip.includes(":") ? ip : ip;
    const r = await this.exec(
      fromNs,
      ["timeout", "3", "bash", "-c", `exec 3<>/dev/tcp/${host}/${port} && cat <&3`],
      6_000,
    );
    return r.code === 0 ? r.stdout.trim() : undefined;
  }

  async down(): Promise<void> {
    for (const c of this.children) c.kill("SIGKILL");
    for (const ns of this.pods.values()) await run("ip", ["netns", "del", ns]);
    this.pods.clear();
    await run("ip", ["netns", "del", this.node]);
    await run("ip", ["netns", "del", this.lan]);
  }
}

function nodad(cidr: string): string[] {
  return cidr.includes(":") ? ["nodad"] : [];
}
