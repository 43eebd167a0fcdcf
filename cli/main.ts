// kubectl-macvlan: the operator's CLI (a kubectl plugin: `kubectl macvlan …` once on PATH, or
// `npx kubectl-macvlan …`). Each command reads a snapshot through kubectl (cli/kubectl.ts) and
// hands it to a pure function (cli/*.ts) whose result is printed as a table, or as JSON/YAML.
import {
  OptionName,
  Options,
  OutputError,
  Parsed,
  UsageError,
  optionHelp,
  parseArgs,
  readOptions,
  required,
} from "./args";
import { doctor, doctorText } from "./doctor";
import { renderTable, toJson, toYaml } from "./format";
import { freeColumns, nextFree } from "./free";
import { Kubectl } from "./kubectl";
import { leaseColumns, listLeases, whoHas, whoHasText } from "./leases";
import { planRelease } from "./release";
import { emptySnapshot, nameOf } from "./snapshot";
import { subnetColumns, summarizeSubnets } from "./subnets";
import { explainPod, explanationText } from "./why";

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  /** Reads one line from the terminal, or undefined when stdin is not a terminal. */
  ask?: (question: string) => Promise<string | undefined>;
  kubectl: Kubectl;
  now?: () => Date;
}

interface Command {
  usage: string;
  summary: string;
  help: string;
  /** The positional arguments after the command's name, and the options read once (args.ts). */
  run(p: Parsed, io: Io, o: Options): Promise<number>;
}

const OUTPUT: [OptionName, string] = ["output", "(default table)"];
const OUTPUT_HELP = optionHelp([OUTPUT]);

/** Prints data as asked: the table/text for a person, the data itself for a script. */
function emit(io: Io, o: Options, data: unknown, text: () => string) {
  io.out(o.output === "json" ? toJson(data) : o.output === "yaml" ? toYaml(data) : text());
}

const COMMANDS: Record<string, Command> = {
  subnets: {
    usage: "subnets",
    summary: "each subnet: CIDR, parent, usage, free, conflicts, per-node readiness",
    help: "Counts come from the subnet's leases through the product's allocator.\n" + OUTPUT_HELP,
    async run(_p, io, o) {
      const [subnets, leases] = await Promise.all([io.kubectl.subnets(), io.kubectl.leases()]);
      const rows = summarizeSubnets({ subnets, leases, now: now(io) });
      emit(io, o, rows, () =>
        rows.length ? renderTable(rows, subnetColumns, o.output === "wide") : "no MacvlanSubnet\n",
      );
      return 0;
    },
  },
  leases: {
    usage: "leases [--subnet S] [-n NS]",
    summary: "the leases, by subnet and address",
    help: optionHelp([
      ["subnet", "only this subnet's leases"],
      ["namespace", "only leases of pods in this namespace"],
      ["phase", "Reserved, Bound or Released"],
      OUTPUT,
    ]),
    async run(_p, io, o) {
      const { subnet, namespace, phase } = o;
      const leases = await io.kubectl.leases(subnet ? `macvlan.dev/subnet=${subnet}` : undefined);
      const rows = listLeases(leases, { subnet, namespace, phase });
      emit(io, o, rows, () =>
        rows.length ? renderTable(rows, leaseColumns(now(io)), o.output === "wide") : "no lease\n",
      );
      return 0;
    },
  },
  "who-has": {
    usage: "who-has <ip>",
    summary: "who holds an address: lease, pod, node, MAC, since when",
    help:
      "Also lists pods that claim the address without a lease. Exit code 1: nobody has it.\n" +
      OUTPUT_HELP,
    async run(p, io, o) {
      const ip = required(p, "an IP address");
      const [leases, pods] = await Promise.all([io.kubectl.leases(), io.kubectl.pods()]);
      const w = whoHas({ leases, pods }, ip);
      emit(io, o, w, () => whoHasText(w, now(io)));
      return w.leases.length || w.pods.length ? 0 : 1;
    },
  },
  free: {
    usage: "free <subnet> [N]",
    summary: "the next N (default 5) addresses admission would hand out",
    help:
      "Pre-leased pool addresses first, then the allocator's order (the product's own).\n" +
      OUTPUT_HELP,
    async run(p, io, o) {
      const [name, count] = p.positional;
      if (!name) throw new UsageError("free needs a subnet name");
      const n = count === undefined ? 5 : Number(count);
      if (!Number.isInteger(n) || n < 1 || n > 100000) throw new UsageError("N must be 1..100000");
      const [subnets, leases] = await Promise.all([
        io.kubectl.subnets(),
        io.kubectl.leases(`macvlan.dev/subnet=${name}`),
      ]);
      const subnet = subnets.find(s => nameOf(s) === name);
      if (!subnet?.spec) {
        io.err(`MacvlanSubnet ${name} not found (kubectl macvlan subnets lists them)\n`);
        return 1;
      }
      const r = nextFree(subnet, leases, n, now(io));
      emit(
        io,
        o,
        r,
        () =>
          `subnet ${r.subnet}: ${r.free} of ${r.total} free, ${r.cooling} cooling\n` +
          renderTable(r.addresses, freeColumns, o.output === "wide") +
          (r.end ? `${r.end}\n` : "") +
          `(${r.note})\n`,
      );
      return r.addresses.length ? 0 : 1;
    },
  },
  why: {
    usage: "why <namespace>/<pod>",
    summary: "explains a pod's macvlan state end to end and says what to do",
    help:
      "Steps: pod, namespace opt-in, subnet, allow-list, lease, Multus selection, network-status,\n" +
      "the agent on the pod's node, recent Events; a dual-stack pod's subnet, allow-list, lease and\n" +
      "agent steps are shown for each of its two subnets. Exit code 1 when a step failed.\n" +
      optionHelp([
        ["namespace", "the pod's namespace when <pod> has no <namespace>/ (default default)"],
        OUTPUT,
      ]),
    async run(p, io, o) {
      const target = required(p, "<namespace>/<pod>");
      const [ns, name] = target.includes("/")
        ? target.split("/", 2)
        : [o.namespace ?? "default", target];
      const k = io.kubectl;
      const [pod, namespaces, subnets, leases, events, agents] = await Promise.all([
        k.pod(ns, name),
        k.namespaces(),
        k.subnets(),
        k.leases(),
        k.events(ns),
        k.agentPods(),
      ]);
      const x = explainPod({
        ...emptySnapshot(now(io)),
        namespace: ns,
        name,
        pods: [...(pod ? [pod] : []), ...agents],
        namespaces,
        subnets,
        leases,
        events,
      });
      emit(io, o, x, () => explanationText(x));
      return x.healthy || x.optedOut ? 0 : 1;
    },
  },
  doctor: {
    usage: "doctor",
    summary: "checks the cluster; exits 1 with a fix-it list when something is wrong",
    help:
      "CRDs, the webhook (a server-side dry-run pod create, timed), admission and watcher pods,\n" +
      "an agent per node, subnets' per-node readiness and exhaustion, conflicts, and Multus\n" +
      "(running macvlan pods without their interface or its leased addresses; a dual-stack pod\n" +
      "without the lease of one of its two subnets).\n" +
      optionHelp([["namespace", "where the dry-run pod is tried (default default)"], OUTPUT]),
    async run(_p, io, o) {
      const k = io.kubectl;
      const [subnets, leases, pods, nodes, crds, webhook, modulePods] = await Promise.all([
        k.subnets(),
        k.leases(),
        k.pods(),
        k.nodes(),
        k.crds(),
        k.probeWebhook(o.namespace ?? "default"),
        k.modulePods(),
      ]);
      const r = doctor({
        ...emptySnapshot(now(io)),
        subnets,
        leases,
        pods,
        nodes,
        crds,
        webhook,
        modulePods,
      });
      emit(io, o, r, () => doctorText(r));
      return r.healthy ? 0 : 1;
    },
  },
  release: {
    usage: "release <ip> --force [--subnet S] [--yes]",
    summary: "manual repair: mark an address's lease Released (with an Event)",
    help:
      "Without --force it only shows what it would do. Asks to type the IP again unless --yes\n" +
      "(required when stdin is not a terminal). The lease is deleted after the subnet's reuse delay.\n" +
      optionHelp([
        ["subnet", "the lease of this subnet, when the address is leased in several"],
        OUTPUT,
      ]),
    async run(p, io, o) {
      const ip = required(p, "an IP address");
      const [leases, subnets, pods] = await Promise.all([
        io.kubectl.leases(),
        io.kubectl.subnets(),
        io.kubectl.pods(),
      ]);
      const plan = planRelease({ leases, subnets, pods, now: now(io) }, ip, o.subnet);
      if (!plan.ok) {
        io.err(`${plan.message}\n`);
        return 1;
      }
      io.err(`${plan.summary}\n${plan.warning ? `warning: ${plan.warning}\n` : ""}`);
      if (!o.force) {
        io.err("nothing done: add --force to release it\n");
        return 2;
      }
      if (!o.yes) {
        const answer = io.ask ? await io.ask(`type ${ip} to confirm: `) : undefined;
        if (answer === undefined) {
          io.err("not a terminal: add --yes to confirm\n");
          return 2;
        }
        if (answer.trim() !== ip) {
          io.err("not confirmed; nothing done\n");
          return 2;
        }
      }
      await io.kubectl.apply(plan.writes);
      emit(
        io,
        o,
        { released: plan.lease.metadata?.name, ip },
        () => `released ${ip} (${plan.lease.metadata?.name})\n`,
      );
      return 0;
    },
  },
};

const now = (io: Io) => (io.now ? io.now() : new Date());

export function usage(): string {
  const width = Math.max(...Object.values(COMMANDS).map(c => c.usage.length));
  return (
    "kubectl macvlan: pepr-macvlan's operator tools\n\nCommands:\n" +
    Object.values(COMMANDS)
      .map(c => `  ${c.usage.padEnd(width)}   ${c.summary}`)
      .join("\n") +
    "\n\nGlobal flags: -o table|wide|json|yaml, --context NAME, --kubeconfig PATH, -h/--help\n" +
    "`kubectl macvlan <command> --help` for a command's details.\n"
  );
}

export async function main(argv: string[], io: Io): Promise<number> {
  let p: Parsed;
  try {
    p = parseArgs(argv);
  } catch (e) {
    io.err(`${(e as Error).message}\n`);
    return 2;
  }
  const [name, ...rest] = p.positional;
  const cmd = name ? COMMANDS[name] : undefined;
  if (!cmd) {
    if (name && name !== "help") io.err(`unknown command "${name}"\n\n`);
    (name && name !== "help" ? io.err : io.out)(usage());
    return name && name !== "help" ? 2 : 0;
  }
  if (p.flags.help) {
    io.out(`usage: kubectl macvlan ${cmd.usage}\n\n${cmd.summary}.\n${cmd.help}\n`);
    return 0;
  }
  let o: Options;
  try {
    o = readOptions(p);
  } catch (e) {
    if (!(e instanceof OutputError)) throw e;
    io.err(`${e.message}\n`);
    return 2;
  }
  try {
    return await cmd.run({ ...p, positional: rest }, io, o);
  } catch (e) {
    io.err(
      `${e instanceof UsageError ? `usage: kubectl macvlan ${cmd.usage}: ` : ""}${(e as Error).message}\n`,
    );
    return e instanceof UsageError ? 2 : 1;
  }
}

/** The process: real kubectl, stdout/stderr, the terminal for confirmations. */
export function run(argv = process.argv.slice(2)): void {
  // Bad arguments are main's to report; the cluster's flags are read here for the Kubectl.
  const o = (() => {
    try {
      return readOptions(parseArgs(argv));
    } catch {
      return undefined;
    }
  })();
  const io: Io = {
    out: s => process.stdout.write(s),
    err: s => process.stderr.write(s),
    ask: process.stdin.isTTY ? askLine : undefined,
    kubectl: new Kubectl({ context: o?.context, kubeconfig: o?.kubeconfig }),
  };
  main(argv, io).then(
    code => (process.exitCode = code),
    e => {
      process.stderr.write(`${(e as Error).stack ?? e}\n`);
      process.exitCode = 1;
    },
  );
}

async function askLine(question: string): Promise<string | undefined> {
  const { createInterface } = await import("node:readline/promises");
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return await rl.question(question);
  } finally {
    rl.close();
  }
}

if (require.main === module) run();
