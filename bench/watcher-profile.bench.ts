// `npm run profile:watcher`: where the watcher's time and memory go during a pod burst. On a local
// cluster with the module (two admission replicas, the watcher), it opens the inspector of the
// watcher's module process (SIGUSR1), samples CPU and allocations through it (bench/profile/cdp.mjs,
// run in the pod's network namespace) while PMV_PROFILE_PODS pods (default 150, 3 Deployments)
// are created, bound, deleted and released, then prints self time and allocations by package and
// by function, and the process's memory before and after (bench/profile/summary.ts). Writes the
// tables to bench/results/<date>-watcher-profile.md. A benchmark: it prints, it asserts nothing.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { log, runClusterBench } from "./harness";
import { REPO_ROOT } from "../hack/cluster/config";
import { podProcesses } from "../hack/cluster/proc";
import {
  Cluster,
  macvlanSubnet,
  sleep,
  testDeployment,
  waitFor,
} from "../test/integration/helpers";
import {
  CpuProfile,
  HeapProfile,
  cpuSelfTime,
  heapAllocations,
  shareTable,
} from "./profile/summary";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const PODS = Number(process.env.PMV_PROFILE_PODS ?? 150);
const DEPLOYMENTS = 3;
const NS = "profile";
const SUBNET = "profile";
const LEASES = "/apis/macvlan.dev/v1alpha1/macvlanleases";

/** The watcher's module process: the child Pepr's controller forks (not controller.js itself). */
async function watcherModulePid(c: Cluster): Promise<number> {
  const pods = (
    await c.api.get("/api/v1/namespaces/pepr-system/pods", {
      labelSelector: "pepr.dev/controller=watcher",
    })
  ).items as Json[];
  const uid = pods.find(p => p.status?.phase === "Running")?.metadata.uid;
  if (!uid) throw new Error("no Running watcher pod");
  const cmd = (pid: number) => fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
  const pid = podProcesses(uid).find(p => {
    const [bin, script = ""] = cmd(p);
    return path.basename(bin) === "node" && !script.endsWith("controller.js");
  });
  if (!pid) throw new Error(`no module process in the watcher pod ${uid} (Pepr forks one)`);
  return pid;
}

async function leases(c: Cluster): Promise<Json[]> {
  return (await c.api.get(LEASES, { labelSelector: `macvlan.dev/subnet=${SUBNET}` })).items;
}

/** The burst: create, wait until every pod's lease is Bound, delete, wait until none is left. */
async function burst(c: Cluster): Promise<Record<string, number>> {
  const t0 = Date.now();
  const at = () => (Date.now() - t0) / 1000;
  const replicas = Math.ceil(PODS / DEPLOYMENTS);
  await c.apply(
    Array.from({ length: DEPLOYMENTS }, (_, i) =>
      testDeployment({ namespace: NS, name: `p${i}`, replicas }),
    ),
  );
  const total = replicas * DEPLOYMENTS;
  await waitFor(
    async () => (await leases(c)).filter(l => l.status?.phase === "Bound").length >= total,
    { what: `${total} leases Bound`, timeoutMs: 20 * 60_000, intervalMs: 2000 },
  );
  const bound = at();
  log(`${total} leases Bound at ${bound.toFixed(1)} s; deleting`);
  await c.kubectl(["-n", NS, "delete", "deployment", "--all", "--wait=false"]);
  await waitFor(async () => !(await leases(c)).some(l => l.spec?.podRef), {
    what: "every pod's lease released and gone",
    timeoutMs: 20 * 60_000,
    intervalMs: 2000,
  });
  return { pods: total, boundSeconds: bound, releasedSeconds: at() };
}

function report(out: string, figures: Record<string, number>): string {
  const cpu = cpuSelfTime(JSON.parse(fs.readFileSync(`${out}.cpuprofile`, "utf8")) as CpuProfile);
  const heap = heapAllocations(
    JSON.parse(fs.readFileSync(`${out}.heapprofile`, "utf8")) as HeapProfile,
  );
  const mem = JSON.parse(fs.readFileSync(`${out}.memory.json`, "utf8"));
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  const sec = (us: number) => `${(us / 1e6).toFixed(2)} s`;
  return [
    `## watcher profile ${new Date().toISOString().slice(0, 16)}Z`,
    "",
    `Machine: ${os.cpus().length} CPUs, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB. ` +
      `Burst: ${figures.pods} pods (${DEPLOYMENTS} Deployments), every lease Bound at ` +
      `${figures.boundSeconds.toFixed(1)} s, every pod's lease released at ` +
      `${figures.releasedSeconds.toFixed(1)} s. Watcher module process memory: rss ` +
      `${mib(mem.start.rss)} → ${mib(mem.end.rss)}, heapUsed ${mib(mem.start.heapUsed)} → ` +
      `${mib(mem.end.heapUsed)}.`,
    "",
    shareTable("CPU self time by package", cpu.byPackage, sec),
    "",
    shareTable("CPU self time by function", cpu.byFunction, sec),
    "",
    shareTable("allocations (sampled) by package", heap.byPackage, mib),
    "",
    shareTable("allocations (sampled) by function", heap.byFunction, mib),
    "",
  ].join("\n");
}

runClusterBench(
  2,
  async c => {
    await c.apply(
      macvlanSubnet(SUBNET, {
        ranges: [{ start: "198.18.110.1", end: "198.18.111.254" }],
        reuseDelaySeconds: 0,
      }),
    );
    await c.createNamespace(NS, { "macvlan.dev/subnet": SUBNET });
    const pid = await watcherModulePid(c);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pmv-profile-"));
    const out = path.join(dir, "watcher");
    const stop = path.join(dir, "stop");
    log(`watcher module process ${pid}: opening its inspector (SIGUSR1)`);
    process.kill(pid, "SIGUSR1");
    const cdp = path.join(REPO_ROOT, "bench", "profile", "cdp.mjs");
    const client = spawn(
      "nsenter",
      [
        "-t",
        String(pid),
        "-n",
        "--",
        process.execPath,
        "--experimental-websocket",
        cdp,
        "9229",
        out,
        stop,
      ],
      { stdio: ["ignore", "inherit", "inherit"] },
    );
    const exited = new Promise<number>(r => client.on("exit", code => r(code ?? 1)));
    await sleep(3000);
    const figures = await burst(c);
    await sleep(10_000); // the tail: Events, subnet status
    fs.writeFileSync(stop, "");
    if ((await exited) !== 0) throw new Error("the profiler client failed (see above)");
    const text = report(out, figures);
    console.log(`\n${text}`);
    const file = path.join(
      REPO_ROOT,
      "bench",
      "results",
      `${new Date().toISOString().slice(0, 10)}-watcher-profile.md`,
    );
    fs.appendFileSync(file, `${fs.existsSync(file) ? "" : "# watcher profiles\n\n"}${text}\n`);
    log(
      `appended to ${path.relative(REPO_ROOT, file)}; raw profiles in ${dir} (open the .cpuprofile in Chrome DevTools)`,
    );
  },
  { agent: false },
);
