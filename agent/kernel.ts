// Kernel I/O of the node agent: reads links, addresses and routes with iproute2's JSON
// output (`ip -j`) and applies planned actions, one `ip` call each. Everything runs in the
// agent's own network namespace, or in a named one (`ip -n <netns>`, used by the tests).
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { canonicalIP, hostPrefix } from "./ip";
import { isOwnedShim, SHIM_SYSCTLS } from "./plan";
import {
  PARENT_ALIAS,
  ROUTE_PROTOCOL,
  SHIM_ALIAS_PREFIX,
  type Family,
  type KernelAction,
  type KernelAddress,
  type KernelLink,
  type KernelRoute,
  type KernelState,
  type PlannedStep,
  type ShimSysctls,
  type StepResult,
} from "./types";

export interface KernelOptions {
  /** Run every command in this named netns (`ip -n`); default: the agent's own. */
  netns?: string;
  /** Path of `ip` (default `ip` from PATH). */
  ipBin?: string;
  /** Where the sysctl tree is (default /proc/sys; a DaemonSet may mount the host's elsewhere). */
  sysctlRoot?: string;
  /** Per-command timeout (default 10 s). */
  timeoutMs?: number;
}

export class KernelError extends Error {
  constructor(
    readonly command: string,
    readonly stderr: string,
  ) {
    super(`${command}: ${stderr.trim() || "failed"}`);
  }
}

/** What `ip -j addr` prints for one address: the parsed shape, before checks. */
type RawAddr = Partial<Omit<KernelAddress, "family">> & { family?: string };

interface RawLink {
  ifindex: number;
  ifname: string;
  link?: string;
  flags?: string[];
  mtu: number;
  ifalias?: string;
  inet6_addr_gen_mode?: string;
  linkinfo?: { info_kind?: string; info_data?: { mode?: string; id?: number } };
  addr_info?: RawAddr[];
}

interface RawRoute {
  type?: string;
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string | number;
  prefsrc?: string;
  metric?: number;
}

/** `ip -j -d addr show` → links with their addresses. */
export function parseLinks(json: string): KernelLink[] {
  const raw = JSON.parse(json || "[]") as RawLink[];
  return raw
    .filter(l => l && typeof l.ifname === "string")
    .map(l => {
      const addresses: KernelAddress[] = (l.addr_info ?? [])
        .filter(a => (a.family === "inet" || a.family === "inet6") && a.local)
        .map(a => ({
          family: a.family === "inet6" ? 6 : 4,
          local: canonicalIP(a.local!) ?? a.local!,
          prefixlen: a.prefixlen ?? (a.family === "inet6" ? 128 : 32),
          scope: a.scope ?? "global",
          secondary: a.secondary,
          deprecated: a.deprecated,
          tentative: a.tentative,
          dadfailed: a.dadfailed,
          nodad: a.nodad,
          noprefixroute: a.noprefixroute,
        }));
      return {
        name: l.ifname,
        index: l.ifindex,
        kind: l.linkinfo?.info_kind,
        parent: l.link,
        mode: l.linkinfo?.info_kind === "macvlan" ? l.linkinfo.info_data?.mode : undefined,
        vlanId: l.linkinfo?.info_kind === "vlan" ? l.linkinfo.info_data?.id : undefined,
        alias: l.ifalias,
        mtu: l.mtu,
        up: (l.flags ?? []).includes("UP"),
        addrGenMode: l.inet6_addr_gen_mode,
        addresses,
      };
    });
}

/** `ip -j [-6] route show table main` → routes with normalised destinations. */
export function parseRoutes(json: string, family: Family): KernelRoute[] {
  const raw = JSON.parse(json || "[]") as RawRoute[];
  return raw
    .filter(r => r && typeof r.dst === "string")
    .map(r => {
      let dst = r.dst;
      if (dst !== "default") {
        const [a, len] = dst.split("/");
        const c = canonicalIP(a) ?? a;
        dst = len === undefined ? hostPrefix(c) : `${c}/${len}`;
      }
      return {
        family,
        dst,
        dev: r.dev,
        src: r.prefsrc ? (canonicalIP(r.prefsrc) ?? r.prefsrc) : undefined,
        protocol: r.protocol === undefined ? "unspec" : String(r.protocol),
        metric: r.metric ?? 0,
        type: r.type ?? "unicast",
        gateway: r.gateway,
      };
    });
}

const gone = (stderr: string) =>
  /No such process|Cannot find device|does not exist|Address not found|Cannot assign requested address|FIB table does not exist/i.test(
    stderr,
  );

export class Kernel {
  readonly netns?: string;
  private readonly ipBin: string;
  private readonly sysctlRoot: string;
  private readonly timeoutMs: number;

  constructor(opts: KernelOptions = {}) {
    this.netns = opts.netns;
    this.ipBin = opts.ipBin ?? "ip";
    this.sysctlRoot = opts.sysctlRoot ?? "/proc/sys";
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  /** Runs `ip [-n netns] args…`, resolves with stdout, rejects with a KernelError. */
  ip(args: string[]): Promise<string> {
    const full = this.netns ? ["-n", this.netns, ...args] : args;
    return this.exec(this.ipBin, full);
  }

  private exec(bin: string, args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(
        bin,
        args,
        { timeout: this.timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: "utf8" },
        (err, stdout, stderr) => {
          if (err) reject(new KernelError(`${bin} ${args.join(" ")}`, stderr || err.message));
          else resolve(stdout);
        },
      );
    });
  }

  async observe(): Promise<KernelState> {
    const [linksJson, r4, r6] = await Promise.all([
      this.ip(["-j", "-d", "addr", "show"]),
      this.ip(["-j", "-4", "route", "show", "table", "main"]),
      // IPv6 may be disabled on the node: then there are simply no IPv6 routes.
      this.ip(["-j", "-6", "route", "show", "table", "main"]).catch(() => "[]"),
    ]);
    const links = parseLinks(linksJson);
    const routes = [...parseRoutes(r4, 4), ...parseRoutes(r6, 6)];
    const shims = links.filter(isOwnedShim);
    const shimKeys = shims.flatMap(l => [
      SHIM_SYSCTLS.arpFilter.key.replace("%s", l.name),
      SHIM_SYSCTLS.acceptRa.key.replace("%s", l.name),
      SHIM_SYSCTLS.autoconf.key.replace("%s", l.name),
    ]);
    const rpNames = ["all", ...links.filter(l => !isOwnedShim(l)).map(l => l.name)];
    const values = await this.readSysctls([
      ...shimKeys,
      ...rpNames.map(n => `net/ipv4/conf/${n}/rp_filter`),
    ]);
    const sysctls: Record<string, ShimSysctls> = {};
    shims.forEach((l, i) => {
      const [arpFilter, acceptRa, autoconf] = values.slice(3 * i, 3 * i + 3);
      sysctls[l.name] = { arpFilter, acceptRa, autoconf };
    });
    const rpFilter: Record<string, string> = {};
    rpNames.forEach((n, i) => {
      const v = values[shimKeys.length + i];
      if (v !== undefined) rpFilter[n] = v;
    });
    return { links, routes, sysctls, rpFilter };
  }

  /** Reads sysctls (`net/ipv4/conf/x/arp_filter`); undefined for those that cannot be read. */
  async readSysctls(keys: string[]): Promise<(string | undefined)[]> {
    if (this.netns) {
      const script = 'for f; do v=$(cat "/proc/sys/$f" 2>/dev/null) || v="?"; echo "$v"; done';
      const out = await this.exec("ip", [
        "netns",
        "exec",
        this.netns,
        "sh",
        "-c",
        script,
        "sh",
        ...keys,
      ]).catch(() => "");
      const lines = out.split("\n");
      return keys.map((_, i) =>
        lines[i] === undefined || lines[i] === "?" ? undefined : lines[i].trim(),
      );
    }
    return Promise.all(
      keys.map(k =>
        readFile(join(this.sysctlRoot, k), "utf8").then(
          v => v.trim(),
          () => undefined,
        ),
      ),
    );
  }

  async writeSysctl(key: string, value: string): Promise<void> {
    if (!/^[\w./-]+$/.test(key) || key.includes("..")) throw new Error(`bad sysctl key ${key}`);
    if (this.netns) {
      await this.exec("ip", [
        "netns",
        "exec",
        this.netns,
        "sh",
        "-c",
        'echo "$2" > "/proc/sys/$1"',
        "sh",
        key,
        value,
      ]);
      return;
    }
    try {
      await writeFile(join(this.sysctlRoot, key), value);
    } catch (e) {
      throw new KernelError(`write ${join(this.sysctlRoot, key)}`, (e as Error).message);
    }
  }

  /** Applies one action. Idempotent: "already there" / "already gone" count as success. */
  async run(a: KernelAction): Promise<void> {
    const fam = (f: Family) => (f === 6 ? "-6" : "-4");
    switch (a.op) {
      case "createVlan": {
        const mtu = a.mtu ? ["mtu", String(a.mtu)] : [];
        await this.ip([
          "link",
          "add",
          "link",
          a.master,
          "name",
          a.name,
          ...mtu,
          "type",
          "vlan",
          "id",
          String(a.vlanId),
        ]);
        await this.ip(["link", "set", "dev", a.name, "alias", PARENT_ALIAS]);
        return;
      }
      case "setUp":
        await this.ip(["link", "set", "dev", a.name, "up"]);
        return;
      case "setMtu":
        await this.ip(["link", "set", "dev", a.name, "mtu", String(a.mtu)]);
        return;
      case "createShim": {
        const mtu = a.mtu ? ["mtu", String(a.mtu)] : [];
        await this.ip([
          "link",
          "add",
          "link",
          a.parent,
          "name",
          a.name,
          ...mtu,
          "type",
          "macvlan",
          "mode",
          "bridge",
        ]);
        await this.ip(["link", "set", "dev", a.name, "alias", a.alias]);
        // No IPv6 link-local address on the shim; fails harmlessly where IPv6 is off.
        await this.ip(["link", "set", "dev", a.name, "addrgenmode", "none"]).catch(() => undefined);
        return;
      }
      case "setAlias":
        await this.ip(["link", "set", "dev", a.name, "alias", a.alias]);
        return;
      case "setAddrGenModeNone":
        await this.ip(["link", "set", "dev", a.name, "addrgenmode", "none"]);
        return;
      case "deleteLink": {
        // Belt and braces: only ever delete a link that still carries the shim alias.
        let links: KernelLink[];
        try {
          links = parseLinks(await this.ip(["-j", "-d", "link", "show", "dev", a.name]));
        } catch (e) {
          if (e instanceof KernelError && gone(e.stderr)) return;
          throw e;
        }
        if (!links.length) return;
        if (!(links[0].alias ?? "").startsWith(SHIM_ALIAS_PREFIX) || links[0].kind !== "macvlan") {
          throw new KernelError(
            `ip link del dev ${a.name}`,
            "refused: the link is not an agent shim",
          );
        }
        await this.ip(["link", "del", "dev", a.name]).catch(e => {
          if (!(e instanceof KernelError && gone(e.stderr))) throw e;
        });
        return;
      }
      case "setSysctl":
        await this.writeSysctl(a.key, a.value);
        return;
      case "addAddress": {
        const extra = a.family === 6 ? ["nodad", "noprefixroute"] : [];
        await this.ip([
          fam(a.family),
          "addr",
          "replace",
          `${a.address}/${a.prefixlen}`,
          "dev",
          a.dev,
          ...extra,
        ]);
        return;
      }
      case "deleteAddress":
        await this.ip([
          fam(a.family),
          "addr",
          "del",
          `${a.address}/${a.prefixlen}`,
          "dev",
          a.dev,
        ]).catch(e => {
          if (!(e instanceof KernelError && gone(e.stderr))) throw e;
        });
        return;
      case "replaceRoute": {
        const src = a.src ? ["src", a.src] : [];
        const metric = a.family === 6 ? ["metric", "1024"] : [];
        await this.ip([
          fam(a.family),
          "route",
          "replace",
          a.dst,
          "dev",
          a.dev,
          ...src,
          "proto",
          String(ROUTE_PROTOCOL),
          ...metric,
          "table",
          "main",
        ]);
        return;
      }
      case "deleteRoute": {
        // `proto` makes the kernel match only the agent's route (fib_table_delete).
        const dev = a.dev ? ["dev", a.dev] : [];
        await this.ip([
          fam(a.family),
          "route",
          "del",
          a.dst,
          ...dev,
          "proto",
          String(ROUTE_PROTOCOL),
          "metric",
          String(a.metric),
          "table",
          "main",
        ]).catch(e => {
          if (!(e instanceof KernelError && gone(e.stderr))) throw e;
        });
        return;
      }
    }
  }

  /** Applies planned steps in order (see {@link applySteps}). */
  apply(steps: PlannedStep[]): Promise<StepResult[]> {
    return applySteps(steps, a => this.run(a));
  }
}

/**
 * Runs planned steps in order. A failed critical step skips the rest of its group; other
 * groups go on (one broken parent never blocks another).
 */
export async function applySteps(
  steps: PlannedStep[],
  run: (a: KernelAction) => Promise<void>,
): Promise<StepResult[]> {
  const failedGroups = new Set<string>();
  const results: StepResult[] = [];
  for (const step of steps) {
    if (failedGroups.has(step.group)) {
      results.push({ step, outcome: "skipped" });
      continue;
    }
    try {
      await run(step.action);
      results.push({ step, outcome: "ok" });
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      results.push({ step, outcome: "failed", error });
      if (step.critical) failedGroups.add(step.group);
    }
  }
  return results;
}
