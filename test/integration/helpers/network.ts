// Network fixtures for test/integration/network-model.test.ts, beside the local cluster's LAN
// (hack/cluster/network.ts: bridge br-lan in netns pmv-lan, router pmv-gw 198.18.0.1/16):
//   - a LAN host that is not a node: netns pmv-lanhost, eth0 198.18.0.50/16 on br-lan;
//   - a segment behind the router: netns pmv-far, eth0 198.18.250.5/24, via the router's eth1
//     198.18.250.1/24 (proxy ARP on the router's LAN port answers for it, as a routed segment);
//   - extra router addresses for subnets whose gateway is not 198.18.0.1.
// Everything made here is removed by `remove()` (call it before the cluster goes down).
import { ChildProcess } from "node:child_process";
import { run } from "../../../hack/cluster/proc";
import type { Cluster } from "./cluster";

export const LAN_NETNS = "pmv-lan";
export const LAN_BRIDGE = "br-lan";
export const ROUTER_NETNS = "pmv-gw";
export const LAN_HOST_NETNS = "pmv-lanhost";
export const LAN_HOST_IP = "198.18.0.50";
export const FAR_NETNS = "pmv-far";
export const FAR_ROUTER_IP = "198.18.250.1";
export const FAR_HOST_IP = "198.18.250.5";
export const FAR_CIDR = "198.18.250.0/24";

function ip(args: string[]): void {
  const r = run("ip", args);
  if (r.code !== 0) throw new Error(`ip ${args.join(" ")}: ${(r.stderr || r.stdout).trim()}`);
}

/** Runs `ip …`, ignoring failures (cleanup of things that may be gone already). */
function ipQuiet(args: string[]): void {
  run("ip", args);
}

export class LanFixtures {
  private routerAddrs: string[] = [];
  private made: string[] = [];
  private children: ChildProcess[] = [];

  /**
   * A new netns with one veth `eth0` whose peer `peer` sits in `peerNetns`: its address, its
   * default route and lo up.
   */
  private addHost(netns: string, peerNetns: string, peer: string, cidr: string, via: string): void {
    ip(["netns", "add", netns]);
    this.made.push(netns);
    ip([
      "-n",
      peerNetns,
      "link",
      "add",
      peer,
      "type",
      "veth",
      "peer",
      "name",
      "eth0",
      "netns",
      netns,
    ]);
    ip(["-n", netns, "link", "set", "lo", "up"]);
    ip(["-n", netns, "addr", "add", cidr, "dev", "eth0"]);
    ip(["-n", netns, "link", "set", "eth0", "up"]);
    ip(["-n", netns, "route", "add", "default", "via", via]);
  }

  /** A netns on br-lan that is not a node: the "LAN host". */
  addLanHost(): void {
    this.addHost(LAN_HOST_NETNS, LAN_NETNS, "p-lanhost", `${LAN_HOST_IP}/16`, "198.18.0.1");
    ip(["-n", LAN_NETNS, "link", "set", "p-lanhost", "master", LAN_BRIDGE, "up"]);
  }

  /** A segment behind the LAN router (198.18.250.0/24) with one host, pmv-far. */
  addFarSegment(): void {
    this.addHost(FAR_NETNS, ROUTER_NETNS, "eth1", `${FAR_HOST_IP}/24`, FAR_ROUTER_IP);
    ip(["-n", ROUTER_NETNS, "addr", "add", `${FAR_ROUTER_IP}/24`, "dev", "eth1"]);
    ip(["-n", ROUTER_NETNS, "link", "set", "eth1", "up"]);
    // LAN members see 198.18.250.0/24 inside their /16: the router answers their ARP for it.
    ip(["netns", "exec", ROUTER_NETNS, "sysctl", "-qw", "net.ipv4.conf.eth0.proxy_arp=1"]);
  }

  /** An extra address on the router's LAN port (the gateway of a subnet such as 198.18.248.0/24). */
  addRouterAddress(cidr: string): void {
    ip(["-n", ROUTER_NETNS, "addr", "add", cidr, "dev", "eth0"]);
    this.routerAddrs.push(cidr);
  }

  /**
   * An HTTP server on the far host answering every GET with the client's address as it arrives
   * there (after any NAT on the way).
   */
  async startEchoServer(c: Cluster, port = 8080): Promise<void> {
    const script = [
      "import http.server as h",
      "class H(h.BaseHTTPRequestHandler):",
      "  def do_GET(s):",
      "    b = s.client_address[0].encode()",
      "    s.send_response(200); s.send_header('Content-Length', str(len(b))); s.end_headers()",
      "    s.wfile.write(b)",
      "  def log_message(s, *a): pass",
      `h.ThreadingHTTPServer(('0.0.0.0', ${port}), H).serve_forever()`,
    ].join("\n");
    this.children.push(await c.spawnIn(`netns/${FAR_NETNS}`, ["/usr/bin/python3", "-c", script]));
  }

  remove(): void {
    for (const ch of this.children) ch.kill("SIGKILL");
    this.children = [];
    for (const cidr of this.routerAddrs)
      ipQuiet(["-n", ROUTER_NETNS, "addr", "del", cidr, "dev", "eth0"]);
    this.routerAddrs = [];
    run("ip", ["netns", "exec", ROUTER_NETNS, "sysctl", "-qw", "net.ipv4.conf.eth0.proxy_arp=0"]);
    ipQuiet(["-n", ROUTER_NETNS, "link", "del", "eth1"]);
    ipQuiet(["-n", LAN_NETNS, "link", "del", "p-lanhost"]);
    for (const ns of this.made.reverse()) ipQuiet(["netns", "del", ns]);
    this.made = [];
  }
}

/** A running tcpdump whose output lines are collected; `waitFor` a line matching a pattern. */
export class Capture {
  lines: string[] = [];
  private waiters: Array<() => void> = [];
  private constructor(private child: ChildProcess) {}

  /** tcpdump -e (with link-level addresses) in a netns target (netns/…, node/…, ns/pod). */
  static async start(c: Cluster, target: string, iface: string, filter: string[]) {
    const child = await c.spawnIn(target, [
      "tcpdump",
      "-i",
      iface,
      "-n",
      "-e",
      "-l",
      "--immediate-mode",
      ...filter,
    ]);
    const cap = new Capture(child);
    let ready: () => void;
    const listening = new Promise<void>(r => (ready = r));
    let buf = "";
    child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      buf += d;
      const parts = buf.split("\n");
      buf = parts.pop()!;
      cap.lines.push(...parts);
      for (const w of cap.waiters.splice(0)) w();
    });
    child.stderr!.setEncoding("utf8").on("data", (d: string) => {
      if (/listening on/.test(d)) ready();
    });
    await Promise.race([
      listening,
      new Promise((_, rej) => setTimeout(() => rej(new Error("tcpdump did not start")), 15000)),
    ]);
    return cap;
  }

  async waitFor(re: RegExp, timeoutMs: number): Promise<string> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.find(l => re.test(l));
      if (hit) return hit;
      const left = end - Date.now();
      if (left <= 0)
        throw new Error(`no captured line matches ${re}; got:\n${this.lines.join("\n")}`);
      await new Promise<void>(r => {
        const timer = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          r();
        });
      });
    }
  }

  stop(): void {
    this.child.kill("SIGTERM");
  }
}

/** `ip -j neigh show <ip> dev <dev>` in a target: the entry's MAC and state, if any. */
export async function neighbour(
  c: Cluster,
  target: string,
  addr: string,
  dev = "eth0",
): Promise<{ mac?: string; state: string[] } | undefined> {
  const r = await c.exec(target, ["ip", "-j", "neigh", "show", addr, "dev", dev]);
  const entries = JSON.parse(r.stdout || "[]") as Array<{ lladdr?: string; state?: string[] }>;
  return entries[0] && { mac: entries[0].lladdr, state: entries[0].state ?? [] };
}

/** `ip -j route get <dst>` in a target: the device and source the kernel would use. */
export async function routeGet(
  c: Cluster,
  target: string,
  dst: string,
): Promise<{ dev: string; prefsrc?: string; gateway?: string }> {
  const out = await c.execOk(target, ["ip", "-j", "route", "get", dst]);
  const [r] = JSON.parse(out) as Array<{ dev: string; prefsrc?: string; gateway?: string }>;
  return r;
}
