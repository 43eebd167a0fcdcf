// Shape of the CRDs beyond the field list (crd-drift.test.ts covers that): structural schema,
// names, printer columns, list-map keys for server-side apply, and the CEL rules.
import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";

interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
  required?: string[];
  enum?: unknown[];
  default?: unknown;
  "x-kubernetes-validations"?: {
    rule: string;
    message?: string;
    messageExpression?: string;
    fieldPath?: string;
  }[];
  "x-kubernetes-list-type"?: string;
  "x-kubernetes-list-map-keys"?: string[];
  [k: string]: unknown;
}

interface Column {
  name: string;
  type: string;
  jsonPath: string;
  priority?: number;
}

interface Crd {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: {
    group: string;
    scope: string;
    names: {
      kind: string;
      plural: string;
      singular: string;
      listKind: string;
      shortNames: string[];
      categories: string[];
    };
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      subresources?: { status?: object };
      additionalPrinterColumns: Column[];
      schema: { openAPIV3Schema: Schema };
    }[];
  };
}

const load = (file: string): Crd =>
  parse(readFileSync(join(__dirname, "..", "..", "crds", file), "utf8"));
const subnet = load("macvlansubnet.yaml");
const lease = load("macvlanlease.yaml");
const root = (crd: Crd) => crd.spec.versions[0].schema.openAPIV3Schema;

function walk(s: Schema, path: string, visit: (s: Schema, path: string) => void) {
  visit(s, path);
  for (const [k, p] of Object.entries(s.properties ?? {})) walk(p, `${path}.${k}`, visit);
  if (s.items) walk(s.items, `${path}[]`, visit);
  if (typeof s.additionalProperties === "object") walk(s.additionalProperties, `${path}{}`, visit);
}

/** The schema node a simple printer-column JSONPath points at (filters on lists are skipped). */
function resolve(s: Schema, jsonPath: string): Schema | undefined {
  let node: Schema | undefined = s;
  for (const part of jsonPath
    .replace(/\[[^\]]*\]/g, "[]")
    .replace(/^\./, "")
    .split(".")) {
    const m = /^([^[]+)(\[.*\])?$/.exec(part);
    if (!m || !node) return undefined;
    if (m[1] === "metadata" && node === s) return { type: "object" };
    node = node.properties?.[m[1]];
    if (m[2] && node) node = node.items;
  }
  return node;
}

const rules = (s: Schema | undefined) => (s?.["x-kubernetes-validations"] ?? []).map(r => r.rule);

for (const [file, crd] of [
  ["macvlansubnet.yaml", subnet],
  ["macvlanlease.yaml", lease],
] as const) {
  test(`${file}: a structural, cluster-scoped v1alpha1 CRD with a status subresource`, t => {
    t.is(crd.apiVersion, "apiextensions.k8s.io/v1");
    t.is(crd.kind, "CustomResourceDefinition");
    t.is(crd.metadata.name, `${crd.spec.names.plural}.${crd.spec.group}`);
    t.is(crd.spec.scope, "Cluster");
    t.is(crd.spec.versions.length, 1);
    const v = crd.spec.versions[0];
    t.true(v.served && v.storage);
    t.deepEqual(v.subresources, { status: {} });
    t.deepEqual(crd.spec.names.categories, ["macvlan"]);
    t.is(crd.spec.names.listKind, `${crd.spec.names.kind}List`);
  });

  test(`${file}: every node has a type and nothing unknown is preserved`, t => {
    const bad: string[] = [];
    walk(root(crd), "$", (s, path) => {
      if (!s.type) bad.push(`${path}: no type`);
      for (const k of [
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-int-or-string",
        "x-kubernetes-embedded-resource",
      ]) {
        if (k in s) bad.push(`${path}: ${k}`);
      }
      if (s.default !== undefined && s.enum && !s.enum.includes(s.default))
        bad.push(`${path}: default not in enum`);
      if (s["x-kubernetes-list-type"] === "map") {
        for (const key of s["x-kubernetes-list-map-keys"] ?? []) {
          if (!s.items?.required?.includes(key))
            bad.push(`${path}: list-map key ${key} is not required`);
        }
      }
      for (const r of s["x-kubernetes-validations"] ?? []) {
        if (!r.message && !r.messageExpression)
          bad.push(`${path}: CEL rule without a message: ${r.rule}`);
      }
    });
    t.deepEqual(bad, []);
  });

  test(`${file}: printer columns point at fields of the schema with matching types`, t => {
    const bad: string[] = [];
    for (const c of crd.spec.versions[0].additionalPrinterColumns) {
      if (c.type === "date") continue;
      const target = resolve(root(crd), c.jsonPath);
      if (!target) bad.push(`${c.name}: ${c.jsonPath} is not in the schema`);
      else if (target.type !== c.type)
        bad.push(`${c.name}: column ${c.type}, field ${target.type}`);
    }
    t.deepEqual(bad, []);
  });
}

const columns = (crd: Crd) =>
  crd.spec.versions[0].additionalPrinterColumns
    .filter(c => !c.priority)
    .map(c => [c.name.toUpperCase(), c.jsonPath]);

test("subnet: short name, printer columns", t => {
  t.deepEqual(subnet.spec.names.shortNames, ["mvs"]);
  t.deepEqual(columns(subnet), [
    ["CIDR", ".spec.cidr"],
    ["MASTER", ".spec.master"],
    ["VLAN", ".spec.vlan"],
    ["ALLOCATED", ".status.allocated"],
    ["FREE", ".status.free"],
    ["READY", '.status.conditions[?(@.type=="Ready")].status'],
    ["AGE", ".metadata.creationTimestamp"],
  ]);
});

test("lease: short name, printer columns", t => {
  t.deepEqual(lease.spec.names.shortNames, ["mvl"]);
  t.deepEqual(columns(lease), [
    ["IP", ".spec.ip"],
    ["MAC", ".spec.mac"],
    ["NAMESPACE", ".spec.podRef.namespace"],
    ["POD", ".spec.podRef.name"],
    ["NODE", ".spec.node"],
    ["PHASE", ".status.phase"],
    ["AGE", ".metadata.creationTimestamp"],
  ]);
});

test("subnet: status lists merge per key under server-side apply; total/free stay strings", t => {
  const status = root(subnet).properties!.status.properties!;
  t.is(status.conditions["x-kubernetes-list-type"], "map");
  t.deepEqual(status.conditions["x-kubernetes-list-map-keys"], ["type"]);
  t.is(status.nodes["x-kubernetes-list-type"], "map");
  t.deepEqual(status.nodes["x-kubernetes-list-map-keys"], ["node"]);
  t.is(status.total.type, "string");
  t.is(status.free.type, "string");
  t.is(status.allocated.type, "integer");
  const re = new RegExp(status.total.pattern as string);
  t.true(re.test("18446744073709551616"));
  t.false(re.test("-1"));
  t.false(re.test("01"));
});

test("subnet: spec is required, with master and cidr", t => {
  t.deepEqual(root(subnet).required, ["spec"]);
  t.deepEqual(root(subnet).properties!.spec.required, ["master", "cidr"]);
  t.deepEqual(root(lease).properties!.spec.required, ["subnet", "ip", "mac"]);
});

test("subnet: CEL rules cover what the object can check by itself", t => {
  const spec = root(subnet).properties!.spec;
  const p = spec.properties!;
  const specRules = rules(spec).join("\n");
  t.regex(specRules, /podDefaultGateway.*has\(self\.gateway\)/);
  t.regex(specRules, /cidr\(self\.cidr\)\.containsIP\(self\.gateway\)/);
  t.regex(specRules, /size\(self\.master\) \+ 1 \+ size\(string\(self\.vlan\)\) <= 15/);
  t.regex(rules(p.master).join("\n"), /\[\^\/:\\s\]/);
  t.true(rules(p.master).includes("self != '.' && self != '..'"));
  t.true(rules(p.cidr).includes("isCIDR(self)"));
  t.true(rules(p.cidr).some(r => r.includes("cidr(self).masked()")));
  t.true(rules(p.namespaces.items).some(r => r.includes("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")));
  t.is(p.namespaces["x-kubernetes-list-type"], "set");
  t.true(rules(p.exclude.items).some(r => r.includes("cidr(self).masked()")));
  t.true(rules(p.routes.items!.properties!.dst).some(r => r.includes("cidr(self).masked()")));
  t.regex(specRules, /self\.exclude\.all\(/);
  t.regex(specRules, /self\.ranges\.all\(/);
  t.regex(specRules, /self\.routes\.all\(/);
  t.true(rules(root(subnet)).includes("size(self.metadata.name) <= 63"));
  // Lease-dependent rules (cidr/master/vlan frozen while leased) are the webhook's job.
  t.false(rules(p.cidr).some(r => r.includes("oldSelf")));
});

test("lease: ip and subnet are immutable; ip must be an address", t => {
  const p = root(lease).properties!.spec.properties!;
  t.true(rules(p.ip).includes("self == oldSelf"));
  t.true(rules(p.ip).includes("isIP(self)"));
  t.true(rules(p.subnet).includes("self == oldSelf"));
  t.false(rules(p.mac).includes("self == oldSelf"), "a lease may be taken over with a new MAC");
  const mac = new RegExp(p.mac.pattern as string);
  t.true(mac.test("02:12:c6:64:00:07"));
  t.false(mac.test("02:12:c6:64:00"));
  t.false(mac.test("02-12-c6-64-00-07"));
});

test("master CEL regex agrees with the validator's interface-name rule", t => {
  // CEL writes the class as r'^[^/:\s]+$'; RE2 and JS agree on it for these inputs.
  const celRule = rules(root(subnet).properties!.spec.properties!.master)[0];
  const m = /r'(.*)'\)$/.exec(celRule);
  t.truthy(m, celRule);
  const re = new RegExp(m![1]);
  for (const ok of ["eth0", "enp0s31f6", "bond0.100", "br-lan"]) t.true(re.test(ok), ok);
  for (const bad of ["eth/0", "eth:0", "eth 0", "eth\t0"]) t.false(re.test(bad), bad);
});
