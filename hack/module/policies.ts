// The module's least-privilege pieces that `npx pepr build/deploy` does not make:
// - deploy/policies.yaml, the ValidatingAdmissionPolicies (agent writes only its own node's
//   status entry; only the module writes leases and managed NADs), applied after crds/;
// - the Pepr store Role and RoleBinding that Pepr 1.1.4 generates are dropped: the RoleBinding
//   names a ServiceAccount that does not exist (`pepr-<uuid>-store`) and the Role's
//   `resourceNames: [""]` grants nothing useful; the module's ClusterRole (package.json `pepr.rbac`)
//   already grants the two stores by name. A dangling binding would hand its Role to whoever later
//   creates a ServiceAccount of that name.
//
// - the Helm chart's Chart.yaml gets its description quoted (Pepr writes it unquoted; ours holds
//   ": ", which is not valid YAML there).
//
// Usage: npx tsx hack/module/policies.ts fix-dist   (run by `npm run build` after `npx pepr build`)
import * as fs from "node:fs";
import * as path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { parseDocument, stringify } from "yaml";
import { WebhookConfigurationShape, scopePatch, scopedSelector } from "../../lib/webhook-scope";
import { REPO_ROOT } from "../cluster/config";

export const POLICIES = path.join(REPO_ROOT, "deploy", "policies.yaml");
export const MODULE_NAMESPACE = "pepr-system";
/** The ServiceAccount `npx pepr deploy` creates and both Deployments run as. */
export const MODULE_SERVICE_ACCOUNT = "pepr-pepr-macvlan";
export const MODULE_USER = `system:serviceaccount:${MODULE_NAMESPACE}:${MODULE_SERVICE_ACCOUNT}`;
export const AGENT_SERVICE_ACCOUNT = "pepr-macvlan-agent";
export const AGENT_USER = `system:serviceaccount:${MODULE_NAMESPACE}:${AGENT_SERVICE_ACCOUNT}`;
export const STORE_RBAC_NAME = `${MODULE_SERVICE_ACCOUNT}-store`;
export const POLICY_NAMES = [
  "pepr-macvlan-agent-own-node",
  "pepr-macvlan-leases-module-only",
  "pepr-macvlan-managed-nads-module-only",
  "pepr-macvlan-opt-in-required",
  "pepr-macvlan-managed-nads-opted-in-only",
];

const HEALTHZ = { path: "/healthz", port: 3000, scheme: "HTTPS" };
/**
 * The module's probes, in place of Pepr's. Pepr's Deployments have a liveness probe only (first
 * check at 10 s, then 3 misses of 1 s each and the container is killed) and a readiness probe
 * with the same 1 s timeout. On a busy node both fire on a healthy process: in a 300-pod burst on
 * 2 cores the watcher's /healthz took over a second to answer and the kubelet killed it (exit
 * 137) again and again, losing its queue each time, and an admission replica restarting there
 * was killed before it was up (the chaos suite). So: a startup probe that gives a start up to 2
 * minutes, a liveness probe that kills only after a minute without an answer, and a readiness
 * probe that waits 5 s for one.
 */
export const MODULE_PROBES = {
  startupProbe: { httpGet: HEALTHZ, periodSeconds: 2, timeoutSeconds: 5, failureThreshold: 60 },
  livenessProbe: { httpGet: HEALTHZ, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 6 },
  readinessProbe: { httpGet: HEALTHZ, periodSeconds: 5, timeoutSeconds: 5, failureThreshold: 3 },
};
/**
 * The module's container resources, in place of Pepr's (200m/256Mi requested, 500m/512Mi limit):
 * no CPU limit. The admission server answers every pod create of an opted-in namespace inside the
 * webhook's timeout, and a CFS quota of 500m makes it wait for the next 100 ms period exactly when
 * a burst arrives: on the local cluster each replica was throttled in 40 of its first ~200 periods
 * (1.4–1.7 s throttled) while it was only starting, and the validating webhook, which does no
 * work, took p50 1.2 s in a 150-pod burst. The request still reserves the CPU it needs; the memory
 * limit stays (a leak is killed, not swapped).
 */
export const MODULE_RESOURCES = {
  requests: { cpu: "200m", memory: "256Mi" },
  limits: { memory: "512Mi" },
};
/** What fix-dist, the chart and the `npx pepr deploy` path set on both module containers. */
export const MODULE_CONTAINER_SETTINGS = { ...MODULE_PROBES, resources: MODULE_RESOURCES };
/** The module's Deployments and their containers, as `npx pepr build` names them. */
export const MODULE_CONTAINERS: Record<string, string> = {
  [MODULE_SERVICE_ACCOUNT]: "server",
  [`${MODULE_SERVICE_ACCOUNT}-watcher`]: "watcher",
};

interface Doc {
  kind?: string;
  metadata?: { name?: string; namespace?: string };
}

/** The store Role or RoleBinding Pepr generates (see the header). */
export const isStoreRbac = (d: Doc | null | undefined) =>
  !!d &&
  (d.kind === "Role" || d.kind === "RoleBinding") &&
  d.metadata?.name === STORE_RBAC_NAME &&
  d.metadata?.namespace === MODULE_NAMESPACE;

/**
 * Removes the store Role and RoleBinding from dist/pepr-module-<uuid>.yaml and the Helm chart,
 * and quotes the chart's description. Returns what it changed (nothing when already done).
 */
export function fixDist(dist = path.join(REPO_ROOT, "dist")): string[] {
  const removed: string[] = [];
  for (const f of fs.readdirSync(dist).filter(f => /^pepr-module-.*\.yaml$/.test(f))) {
    const file = path.join(dist, f);
    // Split on the document separators and drop whole documents: the others stay byte for byte.
    const chunks = fs.readFileSync(file, "utf8").split(/^---\n/m);
    const keep = chunks.filter(c => !isStoreRbac(parseDocument(c).toJS() as Doc));
    const scoped = keep.map(c => withModuleSettings(scopeWebhookDocument(c)));
    const rescoped = scoped.filter((c, i) => c !== keep[i]).length;
    if (keep.length === chunks.length && !rescoped) continue;
    fs.writeFileSync(file, scoped.join("---\n"));
    if (keep.length < chunks.length)
      removed.push(`${f}: ${chunks.length - keep.length} store Role/RoleBinding`);
    if (rescoped)
      removed.push(
        `${f}: ${rescoped} webhook configuration(s) scoped to opted-in namespaces, or Deployment probes and resources set`,
      );
  }
  for (const chart of fs.readdirSync(dist).filter(f => f.endsWith("-chart"))) {
    // Pepr writes package.json's description into Chart.yaml unquoted: ours has ": " in it, which
    // makes Chart.yaml invalid YAML (helm lint/install fail). A JSON string is a valid YAML scalar.
    const chartYaml = path.join(dist, chart, "Chart.yaml");
    if (fs.existsSync(chartYaml)) {
      const text = fs.readFileSync(chartYaml, "utf8");
      const fixed = text.replace(
        /^description: (?!['"])(.*)$/m,
        (_, d: string) => `description: ${JSON.stringify(d)}`,
      );
      if (fixed !== text) {
        fs.writeFileSync(chartYaml, fixed);
        removed.push(`${chart}/Chart.yaml: description quoted`);
      }
    }
    for (const t of ["store-role.yaml", "store-role-binding.yaml"]) {
      const file = path.join(dist, chart, "templates", t);
      if (fs.existsSync(file)) {
        fs.rmSync(file);
        removed.push(`${chart}/templates/${t}`);
      }
    }
  }
  return removed;
}

/**
 * A webhook configuration document with every webhook's namespaceSelector scoped to opted-in
 * namespaces (lib/webhook-scope.ts); any other document, or one already scoped, is returned as is.
 */
export function scopeWebhookDocument(chunk: string): string {
  const doc = parseDocument(chunk);
  const obj = doc.toJS() as WebhookConfigurationShape & Doc;
  if (
    obj?.kind !== "MutatingWebhookConfiguration" &&
    obj?.kind !== "ValidatingWebhookConfiguration"
  )
    return chunk;
  if (!scopePatch(obj).length) return chunk;
  for (const w of obj.webhooks ?? []) w.namespaceSelector = scopedSelector(w.namespaceSelector);
  return stringify(obj);
}

/** A module Deployment document with MODULE_CONTAINER_SETTINGS on its container; any other as it is. */
export function withModuleSettings(chunk: string): string {
  const obj = parseDocument(chunk).toJS() as Doc & {
    spec?: { template?: { spec?: { containers?: Record<string, unknown>[] } } };
  };
  const container = obj?.kind === "Deployment" && MODULE_CONTAINERS[obj.metadata?.name ?? ""];
  const c = container && obj.spec?.template?.spec?.containers?.find(c => c.name === container);
  if (!c || isDeepStrictEqual(pickSettings(c), MODULE_CONTAINER_SETTINGS)) return chunk;
  Object.assign(c, structuredClone(MODULE_CONTAINER_SETTINGS));
  return stringify(obj);
}

const pickSettings = (c: Record<string, unknown>) =>
  Object.fromEntries(Object.keys(MODULE_CONTAINER_SETTINGS).map(k => [k, c[k]]));

/** kubectl arguments that remove what `npx pepr deploy` applied of the store RBAC. */
export const deleteStoreRbacArgs = () => [
  "-n",
  MODULE_NAMESPACE,
  "delete",
  "--ignore-not-found",
  `rolebinding/${STORE_RBAC_NAME}`,
  `role/${STORE_RBAC_NAME}`,
];

if (require.main === module) {
  const cmd = process.argv[2];
  if (cmd === "fix-dist") {
    const removed = fixDist();
    console.log(
      removed.length
        ? `dist/: fixed Pepr's output (store Role/RoleBinding bound to a missing ServiceAccount, webhook scope, chart description): ${removed.join(", ")}`
        : "dist/: nothing to fix",
    );
  } else {
    console.log(`usage: npx tsx hack/module/policies.ts fix-dist

  fix-dist  remove the Pepr store Role and RoleBinding (bound to a ServiceAccount that does not
            exist) from dist/pepr-module-*.yaml and dist/*-chart/templates, scope the webhooks in
            dist/pepr-module-*.yaml to namespaces labelled macvlan.dev/subnet, and quote the
            description in dist/*-chart/Chart.yaml`);
    process.exitCode = cmd ? 1 : 0;
  }
}
