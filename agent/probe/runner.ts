// The thin I/O adapter of LAN conflict probing: runs the pmv-probe helper (agent/probe/main.go,
// raw AF_PACKET: ARP probes and DAD neighbour solicitations) for one parent and a batch of
// addresses, and reads its JSON lines. Node.js itself has no raw sockets.
import { execFile } from "node:child_process";
import type { ProbeAnswer } from "./plan";

export interface ProbeRunner {
  probe(dev: string, ips: string[]): Promise<ProbeAnswer[]>;
}

/** The helper's stdout: one `{"ip","mac"}` object per line; anything else is skipped. */
export function parseProbeOutput(stdout: string): ProbeAnswer[] {
  const out: ProbeAnswer[] = [];
  for (const line of stdout.split("\n")) {
    if (!line.trim()) continue;
    try {
      const o = JSON.parse(line) as Partial<ProbeAnswer>;
      if (
        typeof o.ip === "string" &&
        typeof o.mac === "string" &&
        /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(o.mac)
      )
        out.push({ ip: o.ip, mac: o.mac.toLowerCase() });
    } catch {
      // not ours
    }
  }
  return out;
}

export interface HelperOptions {
  /** Path of pmv-probe (default /usr/local/bin/pmv-probe). */
  helper: string;
  /** Run inside this named netns (`ip netns exec`), as AGENT_NETNS does for `ip`. */
  netns?: string;
  /** How long the helper listens after its last probe. */
  waitMs: number;
}

export class HelperProbeRunner implements ProbeRunner {
  constructor(private readonly o: HelperOptions) {}

  probe(dev: string, ips: string[]): Promise<ProbeAnswer[]> {
    if (!ips.length) return Promise.resolve([]);
    const args = ["-i", dev, "-w", `${this.o.waitMs}ms`, ...ips];
    const [cmd, argv] = this.o.netns
      ? ["ip", ["netns", "exec", this.o.netns, this.o.helper, ...args]]
      : [this.o.helper, args];
    return new Promise((resolve, reject) => {
      execFile(cmd, argv, { timeout: this.o.waitMs + 5000 }, (err, stdout, stderr) => {
        if (err)
          reject(new Error(`${this.o.helper} -i ${dev}: ${String(stderr || err.message).trim()}`));
        else resolve(parseProbeOutput(stdout));
      });
    });
  }
}
