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
import { AgentController, type LogFn } from "./controller";
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

export async function main(argv = process.argv.slice(2)): Promise<number> {
  const once = argv.includes("--once");
  const dryRun = argv.includes("--dry-run");
  const unknown = argv.filter(a => !["--once", "--dry-run"].includes(a));
  if (unknown.length) {
    process.stderr.write(
      `unknown argument(s): ${unknown.join(" ")}\nusage: agent [--once] [--dry-run]\n`,
    );
    return 2;
  }
  const node = process.env.NODE_NAME?.trim();
  if (!node) {
    process.stderr.write("NODE_NAME is required (downward API: spec.nodeName)\n");
    return 2;
  }
  const log = makeLogger(process.env.LOG_LEVEL, node);
  const rp = process.env.AGENT_RP_FILTER ?? "warn";
  if (rp !== "warn" && rp !== "loose") {
    process.stderr.write(`AGENT_RP_FILTER must be warn or loose, not ${rp}\n`);
    return 2;
  }
  const resyncSeconds = Number(process.env.AGENT_RESYNC_SECONDS ?? 30);
  const kernel = new Kernel({
    netns: process.env.AGENT_NETNS || undefined,
    sysctlRoot: process.env.AGENT_SYSCTL_ROOT || undefined,
  });
  const reporter = new StatusReporter({
    node,
    api: new KfcStatusApi({ node, eventNamespace: process.env.AGENT_EVENT_NAMESPACE || "default" }),
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
    nodeIPs: envList("NODE_IPS", "HOST_IP"),
    rpFilter: rp,
    manageSysctls: process.env.AGENT_MANAGE_SYSCTLS !== "false",
    dryRun,
    resyncMs: Math.max(1, Number.isFinite(resyncSeconds) ? resyncSeconds : 30) * 1000,
    log,
  });

  const prober = once || dryRun ? undefined : makeProber(controller, leases, kernel.netns, log);
  probing.prober = prober;
  log("info", "starting", {
    once,
    dryRun,
    resyncSeconds,
    rpFilter: rp,
    netns: kernel.netns,
    probing: prober ? prober.settings : false,
  });
  const watchError = (what: string, err: unknown) =>
    log("warn", "watch trouble", { what, error: errText(err) });
  const watches: Stoppable[] = [];
  let resolveSynced: () => void = () => undefined;
  const synced = new Promise<void>(r => (resolveSynced = r));
  const checkSynced = () => controller.synced && resolveSynced();
  watches.push(
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
  );

  if (once) {
    const limit = Number(process.env.AGENT_ONCE_TIMEOUT_SECONDS ?? 60) * 1000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      synced.then(() => false),
      new Promise<boolean>(r => (timer = setTimeout(() => r(true), limit))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      for (const w of watches) w.stop();
      log("error", "could not list subnets and pods in time", { seconds: limit / 1000 });
      return 1;
    }
    for (const w of watches) w.stop();
    const r = await controller.reconcileOnce();
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
    return Object.values(r.readiness).every(x => x.ready) ? 0 : 1;
  }

  serveAgentMetrics(controller, {
    port: Number(process.env.AGENT_METRICS_PORT ?? DEFAULT_METRICS_PORT),
    resyncMs: resyncSeconds * 1000,
  });
  controller.start();
  if (prober) {
    watches.push(
      watchLeases({
        list: items => leases.replace(items),
        event: (phase, l) => leases.apply(phase, l),
        error: watchError,
      }),
    );
    prober.start();
  }
  await new Promise<void>(resolve => {
    const stop = (sig: string) => {
      log("info", "stopping; kernel state stays so pods keep host access", { signal: sig });
      for (const w of watches) w.stop();
      void controller.stop().then(resolve);
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  return 0;
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
