// The one Helm chart on the local cluster: `helm install` gives a working product (a pod in an
// opted-in namespace gets its lease, net1 and the agent's route), `kubectl macvlan` reads it
// (subnets, why, doctor; doctor finds an agent broken on purpose by `helm upgrade`), another
// upgrade heals it, and `helm uninstall` removes the module and keeps the CRDs and leases.
// Needs `npx pepr build` first (hack/test.sh runs it); the chart is transformed here as
// `npm run build` does (hack/chart/build.ts, idempotent).
import anyTest, { TestFn } from "ava";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawn } from "node:child_process";
import { buildChart } from "../../hack/chart/build";
import {
  Cluster,
  getJson,
  macvlanSubnet,
  podReady,
  testPod,
  waitFor,
  withCluster,
} from "./helpers";

const test = anyTest as TestFn;
const cluster = withCluster(test, { nodes: 2 });
const REPO = path.join(__dirname, "..", "..");
const CHART = path.join(REPO, "dist", "pepr-macvlan-chart");
const HELM = path.join(
  process.env.PEPR_MACVLAN_CACHE ?? path.join(os.homedir(), ".cache", "pepr-macvlan"),
  "bin",
  "helm",
);

interface Run {
  code: number;
  out: string;
}

function exec(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 600_000,
): Promise<Run> {
  return new Promise(resolve => {
    const child = spawn(cmd, args, { cwd: REPO, env: { ...process.env, ...env } });
    let out = "";
    child.stdout.on("data", d => (out += d));
    child.stderr.on("data", d => (out += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", code => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, out });
    });
  });
}

const helm = (c: Cluster, args: string[]) =>
  exec(HELM, [...args, "--kubeconfig", c.kubeconfig], {});
/** The plugin as a user runs it: the bin, with kubectl and KUBECONFIG of the cluster. */
const plugin = (c: Cluster, args: string[]) =>
  exec(process.execPath, [path.join(REPO, "cli", "kubectl-macvlan.js"), ...args], {
    KUBECTL: c.kubectlPath,
    KUBECONFIG: c.kubeconfig,
  });

const agentsReady = async (c: Cluster, n: number) => {
  const ds = await getJson(c, ["-n", "pepr-system", "ds", "pepr-macvlan-agent"]);
  return ds?.status?.numberReady === n && ds.status.updatedNumberScheduled === n;
};

test.before(t => {
  if (!fs.existsSync(CHART))
    throw new Error("dist/pepr-macvlan-chart is missing: run npx pepr build first");
  if (!fs.existsSync(HELM))
    throw new Error(`${HELM} is missing: bash hack/build-binaries.sh --helm`);
  t.log(buildChart(path.join(REPO, "dist")));
});

test.serial("helm install: module, agent, CRDs and policies; a pod gets its address", async t => {
  const c = cluster();
  const r = await helm(c, ["install", "pepr-macvlan", CHART, "--wait", "--timeout", "8m"]);
  t.is(r.code, 0, r.out);
  t.true(
    await waitFor(() => agentsReady(c, c.nodes.length), {
      timeoutMs: 180_000,
      what: "agents Ready",
    }),
  );
  for (const name of ["pepr-macvlan-leases-module-only", "pepr-macvlan-agent-own-node"])
    t.truthy(await getJson(c, ["validatingadmissionpolicy", name]), name);
  await c.apply(
    macvlanSubnet("lan", { ranges: [{ start: "198.18.100.10", end: "198.18.100.60" }] }),
  );
  await c.createNamespace("helm-a", { "macvlan.dev/subnet": "lan" });
  await waitFor(
    async () => (await getJson(c, ["mvs", "lan"]))?.status?.conditions?.[0]?.status === "True",
    {
      what: "subnet Ready",
    },
  );
  await c.apply(testPod({ name: "web", namespace: "helm-a" }));
  const lease = await waitFor(
    async () => {
      const l = (await getJson(c, ["mvl", "-l", "macvlan.dev/pod-namespace=helm-a"]))?.items?.[0];
      return l?.status?.phase === "Bound" && l;
    },
    { timeoutMs: 120_000, what: "the pod's lease Bound" },
  );
  await waitFor(async () => podReady(await c.getPod("helm-a", "web")), {
    timeoutMs: 120_000,
    what: "pod Ready",
  });
  t.regex(lease.spec.ip, /^198\.18\.100\./);
});

test.serial("kubectl macvlan subnets / why / doctor read the Helm-installed cluster", async t => {
  const c = cluster();
  await waitFor(
    async () =>
      (await getJson(c, ["mvs", "lan"]))?.status?.nodes?.filter((n: { ready: boolean }) => n.ready)
        .length === c.nodes.length,
    { timeoutMs: 120_000, what: "every agent reports lan ready" },
  );
  const subnets = await plugin(c, ["subnets"]);
  t.log(`$ kubectl macvlan subnets\n${subnets.out}`);
  t.is(subnets.code, 0, subnets.out);
  // The replicas' pre-leased pool addresses count as allocated too.
  t.regex(
    subnets.out,
    /^lan\s+198\.18\.0\.0\/16\s+eth0\s+\[#+\.*\]\s+\d+% \d+\/51\s+\d+\s+0\s+2\/2 ready$/m,
  );
  const json = JSON.parse((await plugin(c, ["subnets", "-o", "json"])).out);
  t.is(json[0].allocated >= 1, true);
  const why = await waitFor(
    async () => {
      const r = await plugin(c, ["why", "helm-a/web"]);
      return r.code === 0 && r;
    },
    { timeoutMs: 60_000, what: "why helm-a/web healthy" },
  ).catch(async e => {
    t.log((await plugin(c, ["why", "helm-a/web"])).out);
    throw e;
  });
  t.regex(why.out, /=> everything is in place/);
  t.log(`$ kubectl macvlan why helm-a/web\n${why.out}`);
  const doctor = await waitFor(
    async () => {
      const r = await plugin(c, ["doctor"]);
      return r.code === 0 ? r : undefined;
    },
    { timeoutMs: 90_000, what: "doctor healthy" },
  ).catch(async e => {
    t.log((await plugin(c, ["doctor"])).out);
    throw e;
  });
  t.regex(doctor.out, /\[ok {2}\] webhook +reachable: a dry-run pod create took \d+ ms/);
  t.log(`$ kubectl macvlan doctor\n${doctor.out}`);
  const who = await plugin(c, [
    "who-has",
    JSON.parse((await plugin(c, ["leases", "-n", "helm-a", "-o", "json"])).out)[0].ip,
  ]);
  t.is(who.code, 0, who.out);
  t.regex(who.out, /holder: pod helm-a\/web \(Running\)/);
});

test.serial("kubectl macvlan free and release --force on the Helm-installed cluster", async t => {
  const c = cluster();
  const free = await plugin(c, ["free", "lan", "3", "-o", "json"]);
  t.is(free.code, 0, free.out);
  const next = JSON.parse(free.out) as { addresses: { ip: string; source: string }[] };
  t.log(`$ kubectl macvlan free lan 3\n${(await plugin(c, ["free", "lan", "3"])).out}`);
  t.is(next.addresses.length, 3);
  // Pre-leased pool addresses come first (their leases exist); the rest are not leased at all.
  const leased = new Set(
    (JSON.parse((await plugin(c, ["leases", "-o", "json"])).out) as { ip: string }[]).map(
      l => l.ip,
    ),
  );
  for (const a of next.addresses) {
    t.regex(a.ip, /^198\.18\.100\.([1-5]\d|60)$/, "inside the subnet's range");
    t.is(leased.has(a.ip), a.source === "pool", `${a.ip} (${a.source})`);
  }

  await c.apply(testPod({ name: "spare", namespace: "helm-a" }));
  const ip = (await c.waitForPodReady("helm-a", "spare")).metadata!.annotations!["macvlan.dev/ip"];
  const dry = await plugin(c, ["release", ip]);
  t.is(dry.code, 2, "without --force it only says what it would do");
  t.regex(dry.out, /nothing done: add --force/);
  const unconfirmed = await plugin(c, ["release", ip, "--force"]);
  t.is(unconfirmed.code, 2, "no terminal to confirm on: --yes is required");
  const done = await plugin(c, ["release", ip, "--force", "--yes"]);
  t.is(done.code, 0, done.out);
  t.log(`$ kubectl macvlan release ${ip} --force --yes\n${done.out}`);
  const lease = await waitFor(
    async () => {
      const l = (await getJson(c, ["mvl", `lan-${ip.replace(/\./g, "-")}`])) as
        | { status?: { phase?: string } }
        | undefined;
      return (l === undefined || l.status?.phase === "Released") && { phase: l?.status?.phase };
    },
    { timeoutMs: 30_000, what: `lease of ${ip} Released` },
  );
  t.log(`lease of ${ip}: ${lease.phase ?? "deleted"}`);
  const events = await c.kubectl([
    "get",
    "events",
    "-A",
    "--field-selector",
    "reason=ManualRelease",
  ]);
  t.regex(
    events,
    new RegExp(`lan-${ip.replace(/\./g, "-")}`),
    "an Event on the lease says who did it",
  );
  await c.kubectl(["-n", "helm-a", "delete", "pod", "spare", "--wait=true"]);
});

test.serial(
  "helm upgrade that breaks the agent: doctor finds it and exits 1; upgrading back heals",
  async t => {
    const c = cluster();
    const broken = await helm(c, [
      "upgrade",
      "pepr-macvlan",
      CHART,
      "--reuse-values",
      "--set",
      "agent.nodeSelector.pmv-broken=yes",
    ]);
    t.is(broken.code, 0, broken.out);
    await waitFor(
      async () =>
        (
          await getJson(c, [
            "-n",
            "pepr-system",
            "pods",
            "-l",
            "app.kubernetes.io/name=pepr-macvlan-agent",
          ])
        )?.items?.length === 0,
      {
        timeoutMs: 120_000,
        what: "agents gone",
      },
    );
    const doctor = await plugin(c, ["doctor"]);
    t.log(`$ kubectl macvlan doctor   (agent broken on purpose)\n${doctor.out}`);
    t.is(doctor.code, 1, doctor.out);
    t.regex(doctor.out, /\[FAIL\] agent +node \S+: no agent pod/);
    t.regex(doctor.out, /to fix:\n {2}1\. /);
    const healed = await helm(c, [
      "upgrade",
      "pepr-macvlan",
      CHART,
      "--reset-values",
      "--set",
      "logLevel=debug",
      "--wait",
      "--timeout",
      "5m",
    ]);
    t.is(healed.code, 0, healed.out);
    t.true(
      await waitFor(() => agentsReady(c, c.nodes.length), {
        timeoutMs: 180_000,
        what: "agents back",
      }),
    );
    const env = (await getJson(c, ["-n", "pepr-system", "deploy", "pepr-pepr-macvlan"]))?.spec
      .template.spec.containers[0].env;
    t.deepEqual(
      env.filter((e: { name: string }) => e.name === "LOG_LEVEL"),
      [{ name: "LOG_LEVEL", value: "debug" }],
    );
    await c.apply(testPod({ name: "after-upgrade", namespace: "helm-a" }));
    await waitFor(
      async () =>
        (await c.getPod("helm-a", "after-upgrade"))?.metadata?.annotations?.["macvlan.dev/ip"],
      {
        what: "a pod admitted after the upgrade",
      },
    );
    t.pass();
  },
);

test.serial("helm uninstall removes the module and agent, keeps the CRDs and leases", async t => {
  const c = cluster();
  await c.kubectl(["-n", "helm-a", "delete", "pod", "--all", "--wait=false"]);
  const r = await helm(c, ["uninstall", "pepr-macvlan", "--wait", "--timeout", "5m"]);
  t.is(r.code, 0, r.out);
  t.falsy(await getJson(c, ["mutatingwebhookconfiguration", "pepr-pepr-macvlan"]));
  t.falsy(await getJson(c, ["-n", "pepr-system", "deploy", "pepr-pepr-macvlan"]));
  t.falsy(await getJson(c, ["-n", "pepr-system", "ds", "pepr-macvlan-agent"]));
  t.truthy(await getJson(c, ["crd", "macvlanleases.macvlan.dev"]), "CRDs are kept");
  const doctor = await plugin(c, ["doctor"]);
  t.is(doctor.code, 1);
  t.regex(doctor.out, /MutatingWebhookConfiguration is missing/);
});
