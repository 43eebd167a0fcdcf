// The one Helm chart: hack/chart/ transforms the chart `npx pepr build` writes (a fixture copy of
// Pepr 1.1.4's output, test/unit/fixtures/) and `helm lint` / `helm template` accept the result,
// with the values it documents taking effect.
import test from "ava";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseAllDocuments, parseDocument, stringify } from "yaml";
import {
  MODULE_CONTAINER_SETTINGS,
  MODULE_PROBES,
  MODULE_RESOURCES,
  withModuleSettings,
} from "../../hack/module/policies";
import { buildChart, readInputs } from "../../hack/chart/build";
import { ChartFiles, TRANSFORMS, replaceOnce, transformChart } from "../../hack/chart/transforms";

const REPO = path.join(__dirname, "..", "..");
const FIXTURE = path.join(__dirname, "fixtures", "pepr-chart");

function readTree(root: string, dir = ""): ChartFiles {
  const out: ChartFiles = new Map();
  for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) for (const [k, v] of readTree(root, rel)) out.set(k, v);
    else out.set(rel, fs.readFileSync(path.join(root, rel), "utf8"));
  }
  return out;
}

/** The fixture's inputs: the repository's CRDs, policies and agent, the fixture's manifest. */
function inputs() {
  const dist = fs.mkdtempSync(path.join(os.tmpdir(), "pmv-chart-in-"));
  fs.copyFileSync(
    path.join(__dirname, "fixtures", "pepr-chart-module.yaml"),
    path.join(dist, "pepr-module-pepr-macvlan.yaml"),
  );
  return readInputs(dist, REPO);
}

function writeChart(files: ChartFiles): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pmv-chart-"));
  for (const [rel, text] of files) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  }
  return dir;
}

/** Helm from the binary cache (hack/build-binaries.sh --helm builds it once). */
function helmBin(): string {
  const bin = path.join(
    process.env.PEPR_MACVLAN_CACHE ?? path.join(os.homedir(), ".cache", "pepr-macvlan"),
    "bin",
    "helm",
  );
  if (!fs.existsSync(bin)) {
    const r = spawnSync("bash", [path.join(REPO, "hack", "build-binaries.sh"), "--helm"], {
      stdio: "inherit",
    });
    if (r.status !== 0) throw new Error("hack/build-binaries.sh --helm failed");
  }
  return bin;
}

const helm = (args: string[]) => spawnSync(helmBin(), args, { encoding: "utf8" });

const chart = transformChart(readTree(FIXTURE), inputs());
const dir = writeChart(chart.files);
test.after.always(() => fs.rmSync(dir, { recursive: true, force: true }));

function render(set: string[] = []) {
  const r = helm(["template", "pepr-macvlan", dir, ...set.flatMap(s => ["--set", s])]);
  if (r.status !== 0) throw new Error(r.stderr);
  return parseAllDocuments(r.stdout)
    .map(d => d.toJS() as { kind?: string; metadata?: { name?: string }; [k: string]: unknown })
    .filter(d => d?.kind);
}

test("Pepr's chart as built does not lint: its description is unquoted YAML", t => {
  const raw = writeChart(readTree(FIXTURE));
  t.teardown(() => fs.rmSync(raw, { recursive: true, force: true }));
  // The fixture holds Pepr's Chart.yaml with the quoting policies.ts fix-dist adds undone.
  const chartYaml = path.join(raw, "Chart.yaml");
  fs.writeFileSync(
    chartYaml,
    fs.readFileSync(chartYaml, "utf8").replace(/^description: "(.*)"$/m, "description: $1"),
  );
  const r = helm(["lint", raw]);
  t.not(r.status, 0);
  t.regex(r.stdout + r.stderr, /mapping values are not allowed/);
});

test("the transformed chart lints and renders everything: CRDs, module, agent, policies, RBAC, PDB, metrics", t => {
  t.deepEqual(
    chart.applied,
    TRANSFORMS.map(x => x.name),
  );
  const lint = helm(["lint", dir, "--strict"]);
  t.is(lint.status, 0, lint.stdout + lint.stderr);
  const kinds = render().map(d => `${d.kind}/${d.metadata?.name}`);
  for (const want of [
    "CustomResourceDefinition/macvlansubnets.macvlan.dev",
    "CustomResourceDefinition/macvlanleases.macvlan.dev",
    "Deployment/pepr-pepr-macvlan",
    "Deployment/pepr-pepr-macvlan-watcher",
    "DaemonSet/pepr-macvlan-agent",
    "ClusterRole/pepr-macvlan-agent",
    "ClusterRole/pepr-pepr-macvlan",
    "ValidatingAdmissionPolicy/pepr-macvlan-leases-module-only",
    "PodDisruptionBudget/pepr-pepr-macvlan",
    "Service/pepr-macvlan-agent-metrics",
    "MutatingWebhookConfiguration/pepr-pepr-macvlan",
  ])
    t.true(kinds.includes(want), `${want} missing from ${kinds.join(", ")}`);
  t.false(
    kinds.some(k => /store/.test(k)),
    "Pepr's dangling store Role/RoleBinding are dropped",
  );
});

test("the webhooks carry the module's real caBundle (Pepr's string replace corrupts it)", t => {
  const raw = readTree(FIXTURE).get("templates/mutation-webhook.yaml")!;
  t.regex(
    raw,
    /caBundle: >-\n\s+\S*\{\{ \.Values\.admission\.webhookTimeout \}\}/,
    "the fixture shows the bug",
  );
  const manifest = parseAllDocuments(
    fs.readFileSync(path.join(__dirname, "fixtures", "pepr-chart-module.yaml"), "utf8"),
  ).map(d => d.toJS() as { kind: string; webhooks: { clientConfig: { caBundle: string } }[] });
  for (const kind of ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]) {
    const rendered = render().find(d => d.kind === kind) as unknown as (typeof manifest)[number];
    const want = manifest.find(d => d.kind === kind)!.webhooks[0].clientConfig.caBundle;
    t.is(rendered.webhooks[0].clientConfig.caBundle, want);
  }
});

test("documented values take effect: replicas, timeout, failure policy, log level, agent options, images", t => {
  const docs = render([
    "admission.replicas=3",
    "admission.webhookTimeout=7",
    "admission.failurePolicy=Ignore",
    "logLevel=debug",
    "agent.image=registry.example/agent:1.2.3",
    "agent.rpFilter=loose",
    "agent.metricsPort=9555",
    "agent.resources.limits.memory=300Mi",
    "admission.image=registry.example/pepr:9",
  ]);
  type Container = {
    image: string;
    env: { name: string; value?: string }[];
    resources: { limits: { memory: string } };
    ports: { containerPort: number }[];
  };
  const podOf = (kind: string, name: string) =>
    (
      docs.find(d => d.kind === kind && d.metadata?.name === name) as unknown as {
        spec: { replicas?: number; template: { spec: { containers: Container[] } } };
      }
    ).spec;
  const admission = podOf("Deployment", "pepr-pepr-macvlan");
  t.is(admission.replicas, 3);
  const server = admission.template.spec.containers[0];
  t.is(server.image, "registry.example/pepr:9");
  t.deepEqual(
    server.env.filter(e => e.name === "LOG_LEVEL"),
    [{ name: "LOG_LEVEL", value: "debug" }],
  );
  const webhook = docs.find(d => d.kind === "MutatingWebhookConfiguration") as unknown as {
    webhooks: { timeoutSeconds: number; failurePolicy: string }[];
  };
  t.like(webhook.webhooks[0], { timeoutSeconds: 7, failurePolicy: "Ignore" });
  const agent = podOf("DaemonSet", "pepr-macvlan-agent").template.spec.containers[0];
  t.is(agent.image, "registry.example/agent:1.2.3");
  const env = Object.fromEntries(agent.env.map(e => [e.name, e.value]));
  t.like(env, {
    AGENT_RP_FILTER: "loose",
    AGENT_METRICS_PORT: "9555",
    LOG_LEVEL: "debug",
    AGENT_RESYNC_SECONDS: "30",
  });
  t.is(agent.resources.limits.memory, "300Mi");
  t.is(agent.ports[0].containerPort, 9555);
  const off = render([
    "agent.enabled=false",
    "crds.install=false",
    "policies.enabled=false",
    "admission.replicas=1",
  ]);
  t.false(
    off.some(d =>
      [
        "DaemonSet",
        "CustomResourceDefinition",
        "ValidatingAdmissionPolicy",
        "PodDisruptionBudget",
      ].includes(d.kind!),
    ),
  );
  t.not(
    helm(["template", "x", dir, "--set", "logLevel=loud"]).status,
    0,
    "the schema refuses an unknown log level",
  );
});

test("a ServiceMonitor for the agents when asked for; CRDs are kept on uninstall", t => {
  const docs = render(["agent.serviceMonitor.enabled=true"]);
  t.true(docs.some(d => d.kind === "ServiceMonitor" && d.metadata?.name === "pepr-macvlan-agent"));
  const crd = docs.find(d => d.kind === "CustomResourceDefinition") as unknown as {
    metadata: { annotations: Record<string, string> };
  };
  t.is(crd.metadata.annotations["helm.sh/resource-policy"], "keep");
});

test("a transform whose target moved fails loudly", t => {
  t.throws(() => replaceOnce("a\nb", "c", "d", "x.yaml"), {
    message: /expected one c in x.yaml, found 0/,
  });
  const broken = readTree(FIXTURE);
  broken.set("templates/admission-deployment.yaml", "spec: {}\n");
  t.throws(() => transformChart(broken, inputs()), { message: /replicas/ });
});

type Settings = Record<keyof typeof MODULE_CONTAINER_SETTINGS, unknown>;
type Probes = Record<keyof typeof MODULE_PROBES, unknown>;
const containerOf = (doc: unknown) =>
  (doc as { spec: { template: { spec: { containers: Settings[] } } } }).spec.template.spec
    .containers[0];
const probesOf = (c: Settings): Probes => ({
  startupProbe: c.startupProbe,
  livenessProbe: c.livenessProbe,
  readinessProbe: c.readinessProbe,
});

test("both Deployments get the module's probes (a startup probe; liveness and readiness that a busy node does not trip); they are values", t => {
  const deploymentIn = (docs: ReturnType<typeof render>, name: string) =>
    containerOf(docs.find(d => d.kind === "Deployment" && d.metadata?.name === name));
  const docs = render();
  for (const name of ["pepr-pepr-macvlan", "pepr-pepr-macvlan-watcher"])
    t.deepEqual(probesOf(deploymentIn(docs, name)), MODULE_PROBES, name);
  const longer = render(["admission.startupProbe.failureThreshold=90"]);
  t.like(deploymentIn(longer, "pepr-pepr-macvlan").startupProbe as object, {
    failureThreshold: 90,
    periodSeconds: 2,
  });
});

test("fix-dist sets the module's probes and resources (no CPU limit) on the manifest's two Deployments only", t => {
  const deployment = (name: string, container: string) =>
    stringify({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name, namespace: "pepr-system" },
      spec: {
        template: {
          spec: {
            containers: [
              {
                name: container,
                image: "pepr:1",
                // Pepr's own: replaced.
                resources: { limits: { cpu: "500m", memory: "512Mi" } },
                livenessProbe: {
                  httpGet: { path: "/healthz", port: 3000 },
                  initialDelaySeconds: 10,
                },
              },
            ],
          },
        },
      },
    });
  const settingsIn = (text: string) => {
    const c = containerOf(parseDocument(text).toJS());
    return { ...probesOf(c), resources: c.resources };
  };
  const server = withModuleSettings(deployment("pepr-pepr-macvlan", "server"));
  t.deepEqual(settingsIn(server), MODULE_CONTAINER_SETTINGS);
  const watcher = withModuleSettings(deployment("pepr-pepr-macvlan-watcher", "watcher"));
  t.deepEqual(settingsIn(watcher), MODULE_CONTAINER_SETTINGS);
  const limits = (settingsIn(watcher).resources as { limits: Record<string, string> }).limits;
  t.deepEqual(Object.keys(limits), ["memory"], "Pepr's CPU limit is gone");
  const other = deployment("someone-else", "server");
  t.is(withModuleSettings(other), other, "another Deployment is left as it is");
  t.is(withModuleSettings(watcher), watcher, "already set: unchanged");
});

test("both Deployments request CPU but have no CPU limit (a quota throttles admission in a burst); resources are values", t => {
  const docs = render();
  for (const name of ["pepr-pepr-macvlan", "pepr-pepr-macvlan-watcher"]) {
    const d = docs.find(d => d.kind === "Deployment" && d.metadata?.name === name);
    t.deepEqual(containerOf(d).resources, MODULE_RESOURCES, name);
  }
  const capped = render(["admission.resources.limits.cpu=1500m"]);
  const d = capped.find(d => d.kind === "Deployment" && d.metadata?.name === "pepr-pepr-macvlan");
  t.deepEqual(containerOf(d).resources, {
    ...MODULE_RESOURCES,
    limits: { ...MODULE_RESOURCES.limits, cpu: "1500m" },
  });
});

test("a chart `npx pepr build` rewrote over a transformed one is transformed again", t => {
  // pepr build rewrites Pepr's own files and leaves the chart's added templates in place.
  const dist = fs.mkdtempSync(path.join(os.tmpdir(), "pmv-chart-rebuilt-"));
  try {
    fs.copyFileSync(
      path.join(__dirname, "fixtures", "pepr-chart-module.yaml"),
      path.join(dist, "pepr-module-pepr-macvlan.yaml"),
    );
    const root = path.join(dist, "pepr-macvlan-chart");
    const write = (files: ChartFiles) => {
      for (const [rel, text] of files) {
        fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
        fs.writeFileSync(path.join(root, rel), text);
      }
    };
    write(chart.files); // transformed once …
    write(readTree(FIXTURE)); // … then Pepr's files written again over it
    t.regex(buildChart(dist), /add-values/, "transformed again, not 'already transformed'");
    t.regex(fs.readFileSync(path.join(root, "values.yaml"), "utf8"), /^policies:/m);
    t.regex(buildChart(dist), /already transformed/);
  } finally {
    fs.rmSync(dist, { recursive: true, force: true });
  }
});
