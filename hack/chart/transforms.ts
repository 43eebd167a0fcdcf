// Turns the Helm chart `npx pepr build` writes (dist/<name>-chart) into the product's one chart,
// as a list of small named transforms over the chart's files (pure: text in, text out). Each one
// checks that what it edits is there, so a Pepr upgrade that changes its templates fails the build
// loudly instead of shipping a half-edited chart. Add a transform: write a function, add it to
// TRANSFORMS (order matters only where one reads what another adds: values and schema first).
import { Document, isMap, isSeq, parseAllDocuments, parseDocument, YAMLMap } from "yaml";
import { MODULE_PROBES, MODULE_RESOURCES } from "../module/policies";

/** The chart's files by path relative to the chart root. */
export type ChartFiles = Map<string, string>;

/** What the transforms read from the repository, besides the chart. */
export interface ChartInputs {
  /** dist/pepr-module-<uuid>.yaml: the module's manifests as `npx pepr deploy` applies them. */
  moduleManifest: string;
  /** crds/*.yaml, by file name. */
  crds: Record<string, string>;
  /** deploy/policies.yaml */
  policies: string;
  /** agent/deploy/agent.yaml */
  agent: string;
}

export interface Transform {
  name: string;
  /** What it does, for the build log and docs/operations.md. */
  why: string;
  apply(files: ChartFiles, inputs: ChartInputs): void;
}

const need = (files: ChartFiles, path: string): string => {
  const text = files.get(path);
  if (text === undefined)
    throw new Error(`chart: ${path} is missing (did Pepr's chart layout change?)`);
  return text;
};

/** Replaces exactly one occurrence of `from`; throws when it is not there exactly once. */
export function replaceOnce(
  text: string,
  from: string | RegExp,
  to: string,
  where: string,
): string {
  const count =
    typeof from === "string"
      ? text.split(from).length - 1
      : (text.match(new RegExp(from.source, from.flags.replace("g", "") + "g")) ?? []).length;
  if (count !== 1)
    throw new Error(`chart: expected one ${String(from)} in ${where}, found ${count}`);
  return text.replace(from, to);
}

// ---- Chart.yaml and values ----

const quoteDescription: Transform = {
  name: "quote-description",
  why: "Pepr writes package.json's description into Chart.yaml unquoted; ours holds ': ' (invalid YAML)",
  apply(files) {
    const text = need(files, "Chart.yaml");
    files.set(
      "Chart.yaml",
      text.replace(
        /^description: (?!['"])(.*)$/m,
        (_, d: string) => `description: ${JSON.stringify(d)}`,
      ),
    );
  },
};

interface Webhook {
  clientConfig?: { caBundle?: string; service?: { path?: string } };
}

/**
 * Pepr templatizes its webhook YAML with global string replaces: the timeout ("10"), "Fail" and
 * the module's name are replaced everywhere, inside the base64 caBundle too, so the chart's
 * webhooks carry a corrupt CA (every pod create then fails TLS). The caBundle and the service path
 * are put back from the module manifest `npx pepr build` wrote next to the chart.
 */
const restoreWebhookClientConfig: Transform = {
  name: "restore-webhook-client-config",
  why: "Pepr's string replaces corrupt the webhooks' caBundle (and could the path): restore them",
  apply(files, inputs) {
    const docs = parseAllDocuments(inputs.moduleManifest).map(
      d => d.toJS() as { kind?: string; webhooks?: Webhook[] },
    );
    for (const [file, kind] of [
      ["templates/mutation-webhook.yaml", "MutatingWebhookConfiguration"],
      ["templates/validation-webhook.yaml", "ValidatingWebhookConfiguration"],
    ]) {
      const cfg = docs.find(d => d?.kind === kind)?.webhooks?.[0]?.clientConfig;
      if (!cfg?.caBundle || !cfg.service?.path)
        throw new Error(`chart: no ${kind} with a caBundle in the module manifest`);
      let text = need(files, file);
      text = replaceOnce(
        text,
        /caBundle: >-\n[^\n]+\n/,
        `caBundle: >-\n        ${cfg.caBundle}\n`,
        file,
      );
      text = replaceOnce(
        text,
        /path: >-\n[^\n]+\n/,
        `path: >-\n          ${cfg.service.path}\n`,
        file,
      );
      files.set(file, text);
    }
  },
};

/** The values this chart adds to Pepr's, with their documentation (comments in values.yaml). */
export const ADDED_VALUES: { path: string[]; value: unknown; doc: string; schema: object }[] = [
  {
    path: ["logLevel"],
    value: "info",
    doc: "Log level of the admission, watcher and agent pods: debug, info, warn, error",
    schema: { type: "string", enum: ["debug", "info", "warn", "error"] },
  },
  {
    path: ["admission", "replicas"],
    value: 2,
    doc: "Admission (webhook) replicas; a PodDisruptionBudget keeps one up while more than one run",
    schema: { type: "integer", minimum: 1 },
  },
  {
    path: ["crds", "install"],
    value: true,
    doc: "Install and upgrade the MacvlanSubnet/MacvlanLease CRDs (kept on uninstall: deleting them deletes every lease)",
    schema: { type: "object", properties: { install: { type: "boolean" } } },
  },
  {
    path: ["policies", "enabled"],
    value: true,
    doc: "The ValidatingAdmissionPolicies (deploy/policies.yaml): agents write only their node's status entry, only the module writes leases and managed NADs",
    schema: { type: "object", properties: { enabled: { type: "boolean" } } },
  },
  {
    path: ["podDisruptionBudget", "enabled"],
    value: true,
    doc: "A PodDisruptionBudget (minAvailable 1) for the admission replicas",
    schema: { type: "object", properties: { enabled: { type: "boolean" } } },
  },
  {
    path: ["agent"],
    value: {
      enabled: true,
      image: "ghcr.io/pepr-macvlan/agent:0.1.0",
      imagePullPolicy: "IfNotPresent",
      resyncSeconds: 30,
      rpFilter: "warn",
      eventNamespace: "default",
      metricsPort: 9478,
      resources: { requests: { cpu: "10m", memory: "48Mi" }, limits: { memory: "160Mi" } },
      nodeSelector: {},
      serviceMonitor: { enabled: false, labels: {} },
    },
    doc:
      "The node agent DaemonSet (agent/deploy/agent.yaml): image, resync period, rpFilter (warn | loose: set\n" +
      "rp_filter=2 where strict filtering drops pod replies), the namespace of its subnet Events (its Role is\n" +
      "there), its /metrics port on each node (0: off), resources, nodeSelector and a ServiceMonitor",
    schema: { type: "object" },
  },
];

const addValues: Transform = {
  name: "add-values",
  why: "documented values for what the chart adds (log level, replicas, CRDs, policies, PDB, agent)",
  apply(files) {
    const doc = parseDocument(need(files, "values.yaml"));
    for (const v of ADDED_VALUES) {
      if (doc.hasIn(v.path)) continue;
      doc.setIn(v.path, doc.createNode(v.value));
      const parent = v.path.length > 1 ? doc.getIn(v.path.slice(0, -1)) : doc.contents;
      const pair = isMap(parent)
        ? (parent as YAMLMap).items.find(
            p => String((p.key as { value?: unknown })?.value ?? p.key) === v.path.at(-1),
          )
        : undefined;
      if (!pair) continue;
      if (typeof pair.key !== "object" || pair.key === null) pair.key = doc.createNode(pair.key);
      (pair.key as { commentBefore?: string }).commentBefore = ` ${v.doc.replace(/\n/g, "\n ")}`;
    }
    // The log level is one value (logLevel) for every component, not an env entry of each.
    for (const component of ["admission", "watcher"]) {
      const env = doc.getIn([component, "env"]);
      if (isSeq(env))
        env.items = env.items.filter(e => (e as YAMLMap).get?.("name") !== "LOG_LEVEL");
    }
    files.set("values.yaml", doc.toString({ lineWidth: 0 }));
    const schema = JSON.parse(need(files, "values.schema.json"));
    const defs = schema.definitions;
    for (const v of ADDED_VALUES) {
      if (v.path.length === 1 || v.path[0] !== "admission")
        defs.Values.properties[v.path[0]] = v.schema;
      else defs.Admission.properties[v.path[1]] = v.schema;
    }
    files.set("values.schema.json", JSON.stringify(schema, null, 2) + "\n");
  },
};

// ---- templates ----

const LOG_LEVEL_ENV = (indent: string) =>
  `${indent}- name: LOG_LEVEL\n${indent}  value: {{ .Values.logLevel | quote }}\n`;

const deploymentKnobs: Transform = {
  name: "deployment-knobs",
  why: "admission replicas from values; LOG_LEVEL from .Values.logLevel in both Deployments",
  apply(files) {
    const adm = "templates/admission-deployment.yaml";
    let text = replaceOnce(
      need(files, adm),
      /^ {2}replicas: \d+$/m,
      "  replicas: {{ .Values.admission.replicas }}",
      adm,
    );
    text = replaceOnce(
      text,
      "{{- toYaml .Values.admission.env | nindent 12 }}\n",
      `{{- toYaml .Values.admission.env | nindent 12 }}\n${LOG_LEVEL_ENV("            ")}`,
      adm,
    );
    files.set(adm, text);
    const w = "templates/watcher-deployment.yaml";
    files.set(
      w,
      replaceOnce(
        need(files, w),
        "{{- toYaml .Values.watcher.env | nindent 12 }}\n",
        `{{- toYaml .Values.watcher.env | nindent 12 }}\n${LOG_LEVEL_ENV("            ")}`,
        w,
      ),
    );
  },
};

/** Pepr's probe schema allows httpGet and initialDelaySeconds only: the rest of a probe too. */
const PROBE_FIELDS = ["periodSeconds", "timeoutSeconds", "failureThreshold", "successThreshold"];

const moduleProbes: Transform = {
  name: "module-probes",
  why: "Pepr's probes kill and unready a healthy replica on a busy node, and it has no startup probe (hack/module/policies.ts MODULE_PROBES)",
  apply(files) {
    for (const [component, file] of [
      ["admission", "templates/admission-deployment.yaml"],
      ["watcher", "templates/watcher-deployment.yaml"],
    ]) {
      const liveness = `{{- toYaml .Values.${component}.livenessProbe | nindent 12 }}\n`;
      files.set(
        file,
        replaceOnce(
          need(files, file),
          liveness,
          `${liveness}          startupProbe:\n            {{- toYaml .Values.${component}.startupProbe | nindent 12 }}\n`,
          file,
        ),
      );
    }
    const doc = parseDocument(need(files, "values.yaml"));
    for (const component of ["admission", "watcher"])
      for (const [probe, value] of Object.entries(MODULE_PROBES))
        doc.setIn([component, probe], doc.createNode(value));
    files.set("values.yaml", doc.toString({ lineWidth: 0 }));
    const schema = JSON.parse(need(files, "values.schema.json"));
    const defs = schema.definitions;
    defs.Admission.properties.startupProbe = { $ref: "#/definitions/NessProbe" };
    for (const f of PROBE_FIELDS) defs.NessProbe.properties[f] = { type: "integer" };
    defs.NessProbe.required = ["httpGet"];
    files.set("values.schema.json", JSON.stringify(schema, null, 2) + "\n");
  },
};

const moduleResources: Transform = {
  name: "module-resources",
  why: "a CPU limit throttles the admission server inside the webhook timeout during a burst: requests and a memory limit only (hack/module/policies.ts MODULE_RESOURCES)",
  apply(files) {
    const doc = parseDocument(need(files, "values.yaml"));
    for (const component of ["admission", "watcher"])
      doc.setIn([component, "resources"], doc.createNode(MODULE_RESOURCES));
    files.set("values.yaml", doc.toString({ lineWidth: 0 }));
    // Pepr's schema requires cpu and memory in limits too: a limit of either alone is allowed.
    const schema = JSON.parse(need(files, "values.schema.json"));
    const defs = schema.definitions;
    defs.Resources.properties.limits = { $ref: "#/definitions/ResourceLimits" };
    defs.ResourceLimits = { ...defs.Limits, required: [], title: "ResourceLimits" };
    files.set("values.schema.json", JSON.stringify(schema, null, 2) + "\n");
  },
};

const KEEP = { "helm.sh/resource-policy": "keep" };

const addCrds: Transform = {
  name: "add-crds",
  why: "the MacvlanSubnet and MacvlanLease CRDs as templates (upgraded with the chart, kept on uninstall)",
  apply(files, inputs) {
    const docs = Object.keys(inputs.crds)
      .sort()
      .map(f => {
        const d = parseDocument(inputs.crds[f]);
        d.setIn(
          ["metadata", "annotations"],
          d.createNode({
            ...((d.getIn(["metadata", "annotations"]) as YAMLMap)?.toJSON?.() ?? {}),
            ...KEEP,
          }),
        );
        return d.toString({ lineWidth: 0 });
      });
    files.set(
      "templates/crds.yaml",
      `{{- if .Values.crds.install }}\n${docs.join("---\n")}{{- end }}\n`,
    );
  },
};

const addPolicies: Transform = {
  name: "add-policies",
  why: "the ValidatingAdmissionPolicies of deploy/policies.yaml",
  apply(files, inputs) {
    if (inputs.policies.includes("{{"))
      throw new Error(
        "chart: deploy/policies.yaml holds '{{', which Helm would read as a template",
      );
    files.set(
      "templates/policies.yaml",
      `{{- if .Values.policies.enabled }}\n${inputs.policies.trimEnd()}\n{{- end }}\n`,
    );
  },
};

const PLACEHOLDER = (n: string) => `__PMV_${n}__`;

/** Sets a DaemonSet env entry's value (it must exist) or appends it. */
function setEnv(
  env: { name: string; value?: string }[],
  name: string,
  value: string,
  mustExist: boolean,
) {
  const e = env.find(x => x.name === name);
  if (!e && mustExist)
    throw new Error(`chart: agent env ${name} missing in agent/deploy/agent.yaml`);
  if (e) e.value = value;
  else env.push({ name, value });
}

interface AgentDaemonSet {
  kind: string;
  metadata: { namespace?: string };
  spec: {
    template: {
      spec: {
        nodeSelector?: unknown;
        containers: {
          env: { name: string; value?: string }[];
          image: string;
          imagePullPolicy: string;
          resources: unknown;
          ports?: unknown[];
        }[];
      };
    };
  };
}

const addAgent: Transform = {
  name: "add-agent",
  why: "the node agent (agent/deploy/agent.yaml) with image, options, resources and its metrics port from values",
  apply(files, inputs) {
    const docs: Document[] = parseAllDocuments(inputs.agent) as Document[];
    const ds = docs.find(d => (d.toJS() as { kind?: string }).kind === "DaemonSet");
    if (!ds) throw new Error("chart: agent/deploy/agent.yaml has no DaemonSet");
    const obj = ds.toJS() as AgentDaemonSet;
    const pod = obj.spec.template.spec;
    const c = pod.containers[0];
    c.image = PLACEHOLDER("IMAGE");
    c.imagePullPolicy = PLACEHOLDER("PULL");
    c.resources = PLACEHOLDER("RESOURCES");
    pod.nodeSelector = PLACEHOLDER("NODESELECTOR");
    setEnv(c.env, "AGENT_RESYNC_SECONDS", PLACEHOLDER("RESYNC"), true);
    setEnv(c.env, "AGENT_RP_FILTER", PLACEHOLDER("RP"), true);
    setEnv(c.env, "AGENT_EVENT_NAMESPACE", PLACEHOLDER("EVENTNS"), true);
    setEnv(c.env, "AGENT_METRICS_PORT", PLACEHOLDER("PORT"), false);
    setEnv(c.env, "LOG_LEVEL", PLACEHOLDER("LOG"), false);
    c.ports = [{ name: "metrics", containerPort: PLACEHOLDER("PORTNUM"), protocol: "TCP" }];
    ds.contents = ds.createNode(obj) as typeof ds.contents;
    let text = docs.map(d => d.toString({ lineWidth: 0 })).join("---\n");
    const sub: [string, string][] = [
      ["IMAGE", "{{ .Values.agent.image }}"],
      ["PULL", "{{ .Values.agent.imagePullPolicy }}"],
      ["RESYNC", "{{ .Values.agent.resyncSeconds | quote }}"],
      ["RP", "{{ .Values.agent.rpFilter | quote }}"],
      ["EVENTNS", "{{ .Values.agent.eventNamespace | quote }}"],
      ["PORT", "{{ .Values.agent.metricsPort | quote }}"],
      ["PORTNUM", "{{ .Values.agent.metricsPort }}"],
      ["LOG", "{{ .Values.logLevel | quote }}"],
    ];
    for (const [k, v] of sub) text = replaceOnce(text, PLACEHOLDER(k), v, "agent.yaml");
    for (const [k, v] of [
      ["RESOURCES", ".Values.agent.resources"],
      ["NODESELECTOR", ".Values.agent.nodeSelector"],
    ] as const) {
      const re = new RegExp(`^( *)(\\w+): ${PLACEHOLDER(k)}$`, "m");
      const m = re.exec(text);
      if (!m) throw new Error(`chart: ${k} placeholder not found in agent.yaml`);
      text = text.replace(
        re,
        `${m[1]}${m[2]}:\n${m[1]}  {{- toYaml ${v} | nindent ${m[1].length + 2} }}`,
      );
    }
    // The Role for its Events lives where the Events go.
    text = text.replace(
      /(kind: Role(?:Binding)?\nmetadata:\n {2}name: pepr-macvlan-agent-events\n {2}namespace: )default/g,
      "$1{{ .Values.agent.eventNamespace }}",
    );
    files.set(
      "templates/agent.yaml",
      `{{- if .Values.agent.enabled }}\n${text.trimEnd()}\n{{- end }}\n`,
    );
  },
};

const addPdb: Transform = {
  name: "add-pdb",
  why: "a PodDisruptionBudget for the admission replicas (a drain never takes the webhook down)",
  apply(files) {
    files.set(
      "templates/admission-pdb.yaml",
      `{{- if and .Values.admission.enabled .Values.podDisruptionBudget.enabled (gt (int .Values.admission.replicas) 1) }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ .Values.uuid }}
  namespace: pepr-system
spec:
  minAvailable: 1
  selector:
    matchLabels:
      app: {{ .Values.uuid }}
      pepr.dev/controller: admission
{{- end }}
`,
    );
  },
};

const addAgentMetrics: Transform = {
  name: "add-agent-metrics",
  why: "a headless Service for the agents' /metrics and a ServiceMonitor for it (Pepr's cover admission and watcher)",
  apply(files) {
    files.set(
      "templates/agent-metrics.yaml",
      `{{- if and .Values.agent.enabled (gt (int .Values.agent.metricsPort) 0) }}
apiVersion: v1
kind: Service
metadata:
  name: pepr-macvlan-agent-metrics
  namespace: pepr-system
  labels:
    app.kubernetes.io/name: pepr-macvlan-agent
    app.kubernetes.io/part-of: pepr-macvlan
spec:
  clusterIP: None
  selector:
    app.kubernetes.io/name: pepr-macvlan-agent
  ports:
    - name: metrics
      port: {{ .Values.agent.metricsPort }}
      targetPort: metrics
{{- if .Values.agent.serviceMonitor.enabled }}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: pepr-macvlan-agent
  namespace: pepr-system
  labels:
    {{- toYaml .Values.agent.serviceMonitor.labels | nindent 4 }}
spec:
  selector:
    matchLabels:
      app.kubernetes.io/name: pepr-macvlan-agent
  namespaceSelector:
    matchNames:
      - pepr-system
  endpoints:
    - port: metrics
      path: /metrics
{{- end }}
{{- end }}
`,
    );
  },
};

const dropStoreRbac: Transform = {
  name: "drop-store-rbac",
  why: "Pepr's store Role/RoleBinding name a ServiceAccount that does not exist (hack/module/policies.ts says why)",
  apply(files) {
    files.delete("templates/store-role.yaml");
    files.delete("templates/store-role-binding.yaml");
  },
};

export const TRANSFORMS: Transform[] = [
  quoteDescription,
  restoreWebhookClientConfig,
  dropStoreRbac,
  addValues,
  deploymentKnobs,
  moduleProbes,
  moduleResources,
  addCrds,
  addPolicies,
  addAgent,
  addPdb,
  addAgentMetrics,
];

/** Applies every transform in order; returns the files and the names applied. */
export function transformChart(files: ChartFiles, inputs: ChartInputs, transforms = TRANSFORMS) {
  const out = new Map(files);
  for (const t of transforms) t.apply(out, inputs);
  return { files: out, applied: transforms.map(t => t.name) };
}
