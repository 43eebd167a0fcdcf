// pepr-macvlan node agent (design.md §4). One per node (DaemonSet, hostNetwork, NET_ADMIN).
//
//   NODE_NAME=<node> [KUBECONFIG=…] node dist/agent.js [--once] [--dry-run]
//
// Environment:
//   NODE_NAME                 this node (downward API spec.nodeName), required
//   KUBECONFIG                kubeconfig path; in-cluster config when unset
//   NODE_IPS / HOST_IP        fallback source addresses, comma-separated (downward API
//                             status.hostIPs / status.hostIP); the parent's own address wins
//   AGENT_RESYNC_SECONDS      periodic full reconcile (default 30)
//   AGENT_RP_FILTER           warn (default) | loose: set rp_filter=2 where strict filtering
//                             would drop pod replies that come back through the router
//   AGENT_MANAGE_SYSCTLS      true (default) | false: shim arp_filter/accept_ra/autoconf
//   AGENT_SYSCTL_ROOT         sysctl tree (default /proc/sys; a DaemonSet mounts the host's)
//   AGENT_EVENT_NAMESPACE     namespace for Events about subnets (default "default")
//   AGENT_NETNS               run every ip command in this named netns (tests, debugging)
//   AGENT_ONCE_TIMEOUT_SECONDS  --once gives up listing after this long (default 60)
//   AGENT_PROBE               true (default) | false: probe the pools for addresses in use on
//                             the LAN (ARP / NDP duplicate-address probes, in the background)
//   AGENT_PROBE_HELPER        the raw-socket helper (default /usr/local/bin/pmv-probe)
//   AGENT_PROBE_RATE          probes per second, all subnets together (default 20)
//   AGENT_PROBE_RECHECK_SECONDS   unbound leases and known conflicts are probed again (10)
//   AGENT_PROBE_SWEEP_SECONDS     a free address is swept again at most this often (300)
//   AGENT_CONFLICT_HOLD_SECONDS   a conflict is dropped after this long without an answer (60)
//   AGENT_METRICS_PORT        /metrics and /healthz on this port of the node (default 9478, 0: off)
//   LOG_LEVEL                 debug | info (default) | warn | error
// Flags:
//   --once      reconcile once (after listing subnets and pods), print the result, exit
//   --dry-run   plan only, print what would change, never touch the kernel or the apiserver
import { AgentController, type LogFn, type ReconcileReport } from "./controller";
import { Kernel } from "./kernel";
import { KfcStatusApi, watchLeases, watchPods, watchSubnets, type Stoppable } from "./kube";
import { Cache } from "./controller";
import type { MacvlanLease } from "../crds/types";
import { ConflictProber } from "./probe/prober";
import { HelperProbeRunner } from "./probe/runner";
import { existsSync } from "node:fs";
import { errText, StatusReporter } from "./status";
import { DEFAULT_METRICS_PORT, serveAgentMetrics } from "./metrics";

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const;

export function makeLogger(level: string | undefined, node: string): LogFn {
  const min = LEVELS[(level as keyof typeof LEVELS) ?? "info"] ?? LEVELS.info;
  return (lvl, msg, extra) => {
    if (LEVELS[lvl] < min) return;
    const line = JSON.stringify({
      time: new Date().toISOString(),
      level: lvl,
      node,
      msg,
      ...extra,
    });
    (lvl === "error" || lvl === "warn" ? process.stderr : process.stdout).write(`${line}\n`);
  };
}

function envList(...names: string[]): string[] {
  return names
    .flatMap(n => (process.env[n] ?? "").split(","))
    .map(s => s.trim())
    .filter(Boolean);
}

/** What the agent runs with: its flags and environment, read and checked once at startup. */
interface Settings {
  once: boolean;
  dryRun: boolean;
  node: string;
  logLevel: string | undefined;
  rpFilter: "warn" | "loose";
  resyncSeconds: number;
  netns: string | undefined;
  sysctlRoot: string | undefined;
  eventNamespace: string;
  nodeIPs: string[];
  manageSysctls: boolean;
  onceTimeoutMs: number;
  metricsPort: number;
}

/** The agent's parts, wired together (the prober only when probing is on). */
interface Agent {
  log: LogFn;
  kernel: Kernel;
  controller: AgentController;
  leases: Cache<MacvlanLease>;
  prober: ConflictProber | undefined;
}

/** The subnet and pod watches, and a promise kept once both have listed. */
interface Watches {
  watches: Stoppable[];
  synced: Promise<void>;
}

/** Flags and environment as settings, or the usage error to print (exit code 2). */
function readSettings(argv: string[]): Settings | string {
  const unknown = argv.filter(a => !["--once", "--dry-run"].includes(a));
  if (unknown.length) {
    return `unknown argument(s): ${unknown.join(" ")}\nusage: agent [--once] [--dry-run]\n`;
  }
  const node = process.env.NODE_NAME?.trim();
  if (!node) return "NODE_NAME is required (downward API: spec.nodeName)\n";
  const rp = process.env.AGENT_RP_FILTER ?? "warn";
  if (rp !== "warn" && rp !== "loose") return `AGENT_RP_FILTER must be warn or loose, not ${rp}\n`;
  return {
    once: argv.includes("--once"),
    dryRun: argv.includes("--dry-run"),
    node,
    logLevel: process.env.LOG_LEVEL,
    rpFilter: rp,
    resyncSeconds: Number(process.env.AGENT_RESYNC_SECONDS ?? 30),
    netns: process.env.AGENT_NETNS || undefined,
    sysctlRoot: process.env.AGENT_SYSCTL_ROOT || undefined,
    eventNamespace: process.env.AGENT_EVENT_NAMESPACE || "default",
    nodeIPs: envList("NODE_IPS", "HOST_IP"),
    manageSysctls: process.env.AGENT_MANAGE_SYSCTLS !== "false",
    onceTimeoutMs: Number(process.env.AGENT_ONCE_TIMEOUT_SECONDS ?? 60) * 1000,
    metricsPort: Number(process.env.AGENT_METRICS_PORT ?? DEFAULT_METRICS_PORT),
  };
}

/** Kernel, status reporter, controller and (unless --once or --dry-run) the LAN prober. */
function wireAgent(s: Settings): Agent {
  const { node, resyncSeconds } = s;
  const log = makeLogger(s.logLevel, node);
  const kernel = new Kernel({ netns: s.netns, sysctlRoot: s.sysctlRoot });
  const reporter = new StatusReporter({
    node,
    api: new KfcStatusApi({ node, eventNamespace: s.eventNamespace }),
    log,
  });
  const leases = new Cache<MacvlanLease>();
  // Made after the controller (it reads the controller's caches); the controller asks it back.
  const probing: { prober?: ConflictProber } = {};
  const controller = new AgentController({
    conflicts: subnet => probing.prober?.conflicts(subnet) ?? [],
    node,
    kernel,
    reporter,
    nodeIPs: s.nodeIPs,
    rpFilter: s.rpFilter,
    manageSysctls: s.manageSysctls,
    dryRun: s.dryRun,
    resyncMs: Math.max(1, Number.isFinite(resyncSeconds) ? resyncSeconds : 30) * 1000,
    log,
  });
  const prober = s.once || s.dryRun ? undefined : makeProber(controller, leases, kernel.netns, log);
  probing.prober = prober;
  return { log, kernel, controller, leases, prober };
}

/** The handler every watch reports its trouble to. */
function watchTrouble(log: LogFn): (what: string, err: unknown) => void {
  return (what, err) => log("warn", "watch trouble", { what, error: errText(err) });
}

/** Watches this node's subnets and pods; with --once the lists only fill the caches. */
function startWatches(once: boolean, { controller, log }: Agent, node: string): Watches {
  const watchError = watchTrouble(log);
  let resolveSynced: () => void = () => undefined;
  const synced = new Promise<void>(r => (resolveSynced = r));
  const checkSynced = () => controller.synced && resolveSynced();
  const watches: Stoppable[] = [
    watchSubnets({
      list: items => {
        if (!once) controller.onSubnetList(items);
        else controller.subnets.replace(items);
        checkSynced();
      },
      event: (phase, s) => !once && controller.onSubnetEvent(phase, s),
      error: watchError,
    }),
    watchPods(node, {
      list: items => {
        if (!once) controller.onPodList(items);
        else controller.pods.replace(items);
        checkSynced();
      },
      event: (phase, p) => !once && controller.onPodEvent(phase, p),
      error: watchError,
    }),
  ];
  return { watches, synced };
}

/** True when the lists did not come in within limitMs. */
async function syncTimedOut(synced: Promise<void>, limitMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    synced.then(() => false),
    new Promise<boolean>(r => (timer = setTimeout(() => r(true), limitMs))),
  ]);
  clearTimeout(timer);
  return timedOut;
}

/** The --once result on stdout, as JSON. */
function printOnceReport(r: ReconcileReport): void {
  process.stdout.write(
    `${JSON.stringify(
      {
        steps: r.plan.steps.map(s => ({ ...s.action, reason: s.reason })),
        failed: r.results.filter(x => x.outcome === "failed").map(x => x.error),
        readiness: r.readiness,
        unresolvedPods: r.plan.unresolved,
        durationMs: r.durationMs,
      },
      null,
      2,
    )}\n`,
  );
}

/** --once: wait for the lists, reconcile once, print; 0 when every subnet is ready. */
async function runOnce(s: Settings, { controller, log }: Agent, w: Watches): Promise<number> {
  const timedOut = await syncTimedOut(w.synced, s.onceTimeoutMs);
  for (const x of w.watches) x.stop();
  if (timedOut) {
    log("error", "could not list subnets and pods in time", { seconds: s.onceTimeoutMs / 1000 });
    return 1;
  }
  const r = await controller.reconcileOnce();
  printOnceReport(r);
  return Object.values(r.readiness).every(x => x.ready) ? 0 : 1;
}

/** Resolves after SIGTERM or SIGINT, once the watches and the controller have stopped. */
function untilSignal({ controller, log }: Agent, watches: Stoppable[]): Promise<void> {
  return new Promise<void>(resolve => {
    const stop = (sig: string) => {
      log("info", "stopping; kernel state stays so pods keep host access", { signal: sig });
      for (const w of watches) w.stop();
      void controller.stop().then(resolve);
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
}

/** Long-running: metrics, the reconcile loop, the lease watch and prober, until a signal. */
async function runUntilStopped(s: Settings, agent: Agent, watches: Stoppable[]): Promise<number> {
  const { controller, leases, prober, log } = agent;
  serveAgentMetrics(controller, { port: s.metricsPort, resyncMs: s.resyncSeconds * 1000 });
  controller.start();
  if (prober) {
    watches.push(
      watchLeases({
        list: items => leases.replace(items),
        event: (phase, l) => leases.apply(phase, l),
        error: watchTrouble(log),
      }),
    );
    prober.start();
  }
  await untilSignal(agent, watches);
  return 0;
}

export async function main(argv = process.argv.slice(2)): Promise<number> {
  const settings = readSettings(argv);
  if (typeof settings === "string") {
    process.stderr.write(settings);
    return 2;
  }
  const agent = wireAgent(settings);
  const { once, dryRun, resyncSeconds, rpFilter } = settings;
  agent.log("info", "starting", {
    once,
    dryRun,
    resyncSeconds,
    rpFilter,
    netns: agent.kernel.netns,
    probing: agent.prober ? agent.prober.settings : false,
  });
  const w = startWatches(once, agent, settings.node);
  return once ? runOnce(settings, agent, w) : runUntilStopped(settings, agent, w.watches);
}

const seconds = (name: string, dflt: number) => {
  const v = Number(process.env[name] ?? dflt);
  return (Number.isFinite(v) && v > 0 ? v : dflt) * 1000;
};

/** The LAN conflict prober, unless turned off or its helper is missing (then said once). */
function makeProber(
  controller: AgentController,
  leases: Cache<MacvlanLease>,
  netns: string | undefined,
  log: LogFn,
): ConflictProber | undefined {
  if (process.env.AGENT_PROBE === "false") return undefined;
  const helper = process.env.AGENT_PROBE_HELPER || "/usr/local/bin/pmv-probe";
  if (!existsSync(helper)) {
    log("warn", "LAN conflict probing off: helper not found", { helper });
    return undefined;
  }
  const rate = Number(process.env.AGENT_PROBE_RATE ?? 20);
  return new ConflictProber(
    {
      subnets: () => controller.subnets.values(),
      leases: () => leases.values(),
      readiness: () => {
        const r = controller.lastReport;
        if (!r) return undefined;
        return Object.fromEntries(
          Object.entries(r.readiness).map(([k, v]) => [
            k,
            { ...v, parent: r.plan.subnets[k]?.parent },
          ]),
        );
      },
      changed: () => controller.trigger("LAN conflicts changed"),
    },
    {
      runner: new HelperProbeRunner({ helper, netns, waitMs: 250 }),
      settings: {
        ratePerSecond: Number.isFinite(rate) && rate > 0 ? rate : 20,
        maxBatch: Math.max(1, Math.ceil((Number.isFinite(rate) && rate > 0 ? rate : 20) * 1.5)),
        recheckMs: seconds("AGENT_PROBE_RECHECK_SECONDS", 10),
        sweepIntervalMs: seconds("AGENT_PROBE_SWEEP_SECONDS", 300),
        holdMs: seconds("AGENT_CONFLICT_HOLD_SECONDS", 60),
      },
      log,
    },
  );
}

if (require.main === module) {
  main().then(
    code => process.exit(code),
    err => {
      process.stderr.write(
        `fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      process.exit(1);
    },
  );
}
