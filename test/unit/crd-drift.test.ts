// crds/types.ts is the single source of the API; this test fails when crds/*.yaml drifts from
// it. It reads the interfaces with the TypeScript compiler API (syntax only: fast, and no type
// checking of imports) and compares them recursively with each CRD's openAPIV3Schema:
// property names, optionality vs `required`, primitive types, arrays, nested objects, maps
// (Record<string, T>) and string-literal unions vs `enum`.
import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import ts from "typescript";
import { parse } from "yaml";

import * as api from "../../crds/types";

const ROOT = join(__dirname, "..", "..");
const TYPES_FILE = join(ROOT, "crds", "types.ts");

// ---------------------------------------------------------------------------------------------
// Shapes read from TypeScript

type Shape =
  | { kind: "string" }
  | { kind: "number" }
  | { kind: "boolean" }
  | { kind: "enum"; values: string[] }
  | { kind: "array"; items: Shape }
  | { kind: "map"; values: Shape }
  | { kind: "object"; props: Record<string, { shape: Shape; optional: boolean }> }
  | { kind: "opaque" };

/** The Kubernetes object envelope: KFC's GenericKind, or our pure KubernetesObjectEnvelope. */
const ENVELOPE = "KubernetesObjectEnvelope";
const envelopeProps = (): Record<string, { shape: Shape; optional: boolean }> => ({
  apiVersion: { shape: { kind: "string" }, optional: true },
  kind: { shape: { kind: "string" }, optional: true },
  metadata: { shape: { kind: "opaque" }, optional: true },
});

/** Reads the named interface, class or type alias from TypeScript source into a Shape. */
function shapesFrom(source: string, fileName = "inline.ts"): (name: string) => Shape {
  const sf = ts.createSourceFile(fileName, source, ts.ScriptTarget.ES2022, true);
  const decls = new Map<string, ts.Node>();
  sf.forEachChild(n => {
    if (
      (ts.isInterfaceDeclaration(n) || ts.isTypeAliasDeclaration(n) || ts.isClassDeclaration(n)) &&
      n.name
    ) {
      decls.set(n.name.text, n);
    }
  });

  const fail = (node: ts.Node, why: string): never => {
    throw new Error(`${fileName}: ${why}: ${node.getText(sf)}`);
  };

  const members = (
    list: readonly (ts.TypeElement | ts.ClassElement)[],
    owner: ts.Node,
    depth: number,
  ) => {
    const props: Record<string, { shape: Shape; optional: boolean }> = {};
    for (const m of list) {
      if (ts.isPropertySignature(m) || ts.isPropertyDeclaration(m)) {
        if (!m.type || !ts.isIdentifier(m.name)) fail(m, "property needs a name and a type");
        props[(m.name as ts.Identifier).text] = {
          shape: ofType(m.type!, depth + 1),
          optional: !!m.questionToken,
        };
      } else if (ts.isIndexSignatureDeclaration(m)) {
        fail(m, "index signatures are not supported (use Record<string, T>)");
      } else if (!ts.isConstructorDeclaration(m) && !ts.isMethodDeclaration(m)) {
        fail(m, `unsupported member in ${owner.getText(sf).slice(0, 40)}`);
      }
    }
    return props;
  };

  const ofDecl = (name: string, depth: number): Shape => {
    const d = decls.get(name);
    if (!d) throw new Error(`${fileName}: no interface, class or type ${name}`);
    if (ts.isTypeAliasDeclaration(d)) return ofType(d.type, depth + 1);
    if (ts.isInterfaceDeclaration(d)) {
      const bases = d.heritageClauses?.flatMap(h => h.types.map(t => t.expression.getText(sf)));
      const props = members(d.members, d, depth);
      if (!bases?.length) return { kind: "object", props };
      if (bases.join() !== ENVELOPE) fail(d, `interfaces may only extend ${ENVELOPE}`);
      return { kind: "object", props: { ...envelopeProps(), ...props } };
    }
    const c = d as ts.ClassDeclaration;
    const base = c.heritageClauses?.flatMap(h => h.types.map(t => t.expression.getText(sf))) ?? [];
    const props = members(c.members, c, depth);
    if (base.length) {
      // The Kubernetes object envelope that GenericKind carries.
      if (base.join() !== "GenericKind") fail(c, "classes may only extend GenericKind");
      Object.assign(props, envelopeProps());
    }
    return { kind: "object", props };
  };

  function ofType(t: ts.TypeNode, depth: number): Shape {
    if (depth > 20) fail(t, "type nests too deep (recursive?)");
    switch (t.kind) {
      case ts.SyntaxKind.StringKeyword:
        return { kind: "string" };
      case ts.SyntaxKind.NumberKeyword:
        return { kind: "number" };
      case ts.SyntaxKind.BooleanKeyword:
        return { kind: "boolean" };
    }
    if (ts.isParenthesizedTypeNode(t)) return ofType(t.type, depth);
    if (ts.isTypeOperatorNode(t) && t.operator === ts.SyntaxKind.ReadonlyKeyword)
      return ofType(t.type, depth);
    if (ts.isLiteralTypeNode(t) && ts.isStringLiteral(t.literal))
      return { kind: "enum", values: [t.literal.text] };
    if (ts.isUnionTypeNode(t)) {
      const values = t.types.map(m => {
        const s = ofType(m, depth + 1);
        return s.kind === "enum"
          ? s.values
          : fail(t, "only unions of string literals are supported");
      });
      return { kind: "enum", values: values.flat() };
    }
    if (ts.isArrayTypeNode(t)) return { kind: "array", items: ofType(t.elementType, depth + 1) };
    if (ts.isTypeLiteralNode(t)) return { kind: "object", props: members(t.members, t, depth) };
    if (ts.isTypeReferenceNode(t)) {
      const name = t.typeName.getText(sf);
      const args = t.typeArguments ?? [];
      if ((name === "Array" || name === "ReadonlyArray") && args.length === 1) {
        return { kind: "array", items: ofType(args[0], depth + 1) };
      }
      if (name === "Record" && args.length === 2) {
        if (args[0].kind !== ts.SyntaxKind.StringKeyword) fail(t, "Record keys must be string");
        return { kind: "map", values: ofType(args[1], depth + 1) };
      }
      if (args.length) fail(t, "generic types are not supported");
      return ofDecl(name, depth + 1);
    }
    return fail(t, "unsupported type");
  }

  return name => ofDecl(name, 0);
}

// ---------------------------------------------------------------------------------------------
// Comparison with an OpenAPI v3 schema

interface Schema {
  type?: string;
  description?: string;
  enum?: unknown[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  additionalProperties?: Schema | boolean;
  [k: string]: unknown;
}

interface CompareOptions {
  /** Paths that the schema requires although the TypeScript type marks them optional. */
  requiredInSchemaOnly?: string[];
}

/** Returns one message per disagreement between a TypeScript shape and a schema. */
function compareShape(
  shape: Shape,
  schema: Schema | undefined,
  path: string,
  opts: CompareOptions = {},
): string[] {
  if (!schema) return [`${path}: in TypeScript, missing in the schema`];
  const errs: string[] = [];
  const expectType = (want: string | string[]) => {
    const ok = Array.isArray(want) ? want.includes(schema.type ?? "") : schema.type === want;
    if (!ok) errs.push(`${path}: TypeScript ${shape.kind}, schema type ${schema.type ?? "(none)"}`);
    return ok;
  };
  switch (shape.kind) {
    case "string":
    case "number":
    case "boolean":
      expectType(shape.kind === "number" ? ["integer", "number"] : shape.kind);
      if (schema.enum)
        errs.push(
          `${path}: schema has enum ${JSON.stringify(schema.enum)}, TypeScript a plain ${shape.kind} (use a string-literal union)`,
        );
      break;
    case "enum": {
      expectType("string");
      const want = [...shape.values].sort();
      const got = (schema.enum ?? []).map(String).sort();
      if (JSON.stringify(want) !== JSON.stringify(got)) {
        errs.push(
          `${path}: TypeScript union ${JSON.stringify(want)}, schema enum ${schema.enum ? JSON.stringify(got) : "(none)"}`,
        );
      }
      break;
    }
    case "array":
      if (expectType("array"))
        errs.push(...compareShape(shape.items, schema.items, `${path}[]`, opts));
      break;
    case "map":
      if (expectType("object")) {
        if (schema.properties) errs.push(`${path}: TypeScript Record, schema has fixed properties`);
        const values =
          typeof schema.additionalProperties === "object" ? schema.additionalProperties : undefined;
        if (!values)
          errs.push(`${path}: TypeScript Record, schema has no additionalProperties schema`);
        else errs.push(...compareShape(shape.values, values, `${path}{}`, opts));
      }
      break;
    case "opaque":
      expectType("object");
      break;
    case "object": {
      if (!expectType("object")) break;
      if (schema.additionalProperties !== undefined)
        errs.push(`${path}: schema has additionalProperties, TypeScript an interface`);
      const props = schema.properties ?? {};
      const required = new Set(schema.required ?? []);
      for (const r of required)
        if (!(r in props)) errs.push(`${path}.${r}: required in the schema but not a property`);
      for (const [name, field] of Object.entries(shape.props)) {
        const p = `${path}.${name}`;
        if (!(name in props)) {
          errs.push(`${p}: in TypeScript, missing in the schema`);
          continue;
        }
        const inSchema = required.has(name);
        if (!field.optional && !inSchema)
          errs.push(`${p}: required in TypeScript, optional in the schema`);
        if (field.optional && inSchema && !opts.requiredInSchemaOnly?.includes(p)) {
          errs.push(`${p}: optional in TypeScript, required in the schema`);
        }
        errs.push(...compareShape(field.shape, props[name], p, opts));
      }
      for (const name of Object.keys(props)) {
        if (!(name in shape.props))
          errs.push(`${path}.${name}: in the schema, missing in TypeScript`);
      }
      break;
    }
  }
  return errs;
}

/** Paths of schema nodes (properties and array items) without a description. */
function missingDescriptions(schema: Schema, path: string, exempt: string[] = []): string[] {
  const out: string[] = [];
  if (
    !exempt.includes(path) &&
    !(typeof schema.description === "string" && schema.description.trim())
  )
    out.push(path);
  for (const [name, p] of Object.entries(schema.properties ?? {}))
    out.push(...missingDescriptions(p, `${path}.${name}`, exempt));
  if (schema.items) out.push(...missingDescriptions(schema.items, `${path}[]`, exempt));
  return out;
}

// ---------------------------------------------------------------------------------------------
// The real files

const shapeOf = shapesFrom(readFileSync(TYPES_FILE, "utf8"), "crds/types.ts");

interface Crd {
  spec: {
    group: string;
    scope: string;
    names: { kind: string; plural: string };
    versions: { name: string; schema: { openAPIV3Schema: Schema } }[];
  };
}

const loadCrd = (file: string): Crd => parse(readFileSync(join(ROOT, "crds", file), "utf8"));
const schemaOf = (crd: Crd) => crd.spec.versions[0].schema.openAPIV3Schema;

const KINDS = [
  { file: "macvlansubnet.yaml", cls: "MacvlanSubnet", gvk: api.SubnetGVK },
  { file: "macvlanlease.yaml", cls: "MacvlanLease", gvk: api.LeaseGVK },
];

const ROOT_OPTS: CompareOptions = { requiredInSchemaOnly: ["$.spec"] };

for (const k of KINDS) {
  test(`${k.file} matches ${k.cls} in crds/types.ts`, t => {
    const crd = loadCrd(k.file);
    t.deepEqual(compareShape(shapeOf(k.cls), schemaOf(crd), "$", ROOT_OPTS), []);
  });

  test(`${k.file} names match ${k.cls}'s GVK`, t => {
    const crd = loadCrd(k.file);
    t.is(crd.spec.group, k.gvk.group);
    t.is(crd.spec.names.kind, k.gvk.kind);
    t.is(crd.spec.names.plural, k.gvk.plural);
    t.deepEqual(
      crd.spec.versions.map(v => v.name),
      [k.gvk.version],
    );
    t.is(crd.spec.scope, "Cluster");
  });

  test(`${k.file}: every field has a description`, t => {
    // The apiserver forbids anything but `type` (and name/generateName rules) on metadata.
    t.deepEqual(missingDescriptions(schemaOf(loadCrd(k.file)), "$", ["$.metadata"]), []);
  });
}

test("schema defaults, ranges and enums match the constants in crds/types.ts", t => {
  const spec = schemaOf(loadCrd("macvlansubnet.yaml")).properties!.spec.properties!;
  t.is(spec.vlan.default, api.DEFAULT_VLAN);
  t.is(spec.vlan.minimum, api.VLAN_MIN);
  t.is(spec.vlan.maximum, api.VLAN_MAX);
  t.is(spec.mode.default, api.DEFAULT_MODE);
  t.deepEqual(spec.mode.enum, [...api.MACVLAN_MODES]);
  t.is(spec.reuseDelaySeconds.default, api.DEFAULT_REUSE_DELAY_SECONDS);
  t.is(spec.reuseDelaySeconds.minimum, 0);
  t.is(spec.mtu.minimum, api.MTU_MIN);
  t.is(spec.mtu.maximum, api.MTU_MAX);
  t.is(spec.master.maxLength, api.IFNAME_MAX);
  const phase = schemaOf(loadCrd("macvlanlease.yaml")).properties!.status.properties!.phase;
  t.deepEqual(phase.enum, [...api.LEASE_PHASES]);
  t.is(
    schemaOf(loadCrd("macvlanlease.yaml")).properties!.spec.properties!.subnet.maxLength,
    api.SUBNET_NAME_MAX,
  );
});

test("the constant lists agree with their unions", t => {
  t.deepEqual(
    [...api.MACVLAN_MODES].sort(),
    (shapeOf("MacvlanMode") as { values: string[] }).values.sort(),
  );
  t.deepEqual(
    [...api.LEASE_PHASES].sort(),
    (shapeOf("LeasePhase") as { values: string[] }).values.sort(),
  );
});

// ---------------------------------------------------------------------------------------------
// The comparator itself must catch drift

const INLINE = `
  type Colour = "red" | "green";
  export interface Inner { flag: boolean; tags?: string[] }
  export interface Outer {
    name: string;
    count?: number;
    colour: Colour;
    inner?: Inner;
    list: Inner[];
    labels?: Record<string, string>;
  }
`;

const good = (): Schema => ({
  type: "object",
  required: ["name", "colour", "list"],
  properties: {
    name: { type: "string" },
    count: { type: "integer" },
    colour: { type: "string", enum: ["green", "red"] },
    inner: {
      type: "object",
      required: ["flag"],
      properties: { flag: { type: "boolean" }, tags: { type: "array", items: { type: "string" } } },
    },
    list: {
      type: "array",
      items: {
        type: "object",
        required: ["flag"],
        properties: {
          flag: { type: "boolean" },
          tags: { type: "array", items: { type: "string" } },
        },
      },
    },
    labels: { type: "object", additionalProperties: { type: "string" } },
  },
});

const inline = shapesFrom(INLINE)("Outer");

test("comparator: a matching schema gives no differences", t => {
  t.deepEqual(compareShape(inline, good(), "$"), []);
});

const DRIFTS: [string, (s: Schema) => void, RegExp][] = [
  [
    "missing property",
    s => delete s.properties!.count,
    /\$\.count: in TypeScript, missing in the schema/,
  ],
  [
    "extra property",
    s => (s.properties!.extra = { type: "string" }),
    /\$\.extra: in the schema, missing in TypeScript/,
  ],
  [
    "optional in schema",
    s => (s.required = ["colour", "list"]),
    /\$\.name: required in TypeScript, optional in the schema/,
  ],
  [
    "required in schema",
    s => s.required!.push("count"),
    /\$\.count: optional in TypeScript, required in the schema/,
  ],
  [
    "wrong primitive",
    s => (s.properties!.count.type = "string"),
    /\$\.count: TypeScript number, schema type string/,
  ],
  [
    "enum value drift",
    s => (s.properties!.colour.enum = ["red", "blue"]),
    /\$\.colour: TypeScript union/,
  ],
  [
    "enum missing",
    s => delete s.properties!.colour.enum,
    /\$\.colour: TypeScript union .* schema enum \(none\)/,
  ],
  ["enum on a plain string", s => (s.properties!.name.enum = ["a"]), /\$\.name: schema has enum/],
  [
    "nested type",
    s => (s.properties!.inner.properties!.flag.type = "string"),
    /\$\.inner\.flag: TypeScript boolean/,
  ],
  [
    "array items",
    s => (s.properties!.list.items!.properties!.tags.items!.type = "integer"),
    /\$\.list\[\]\.tags\[\]: TypeScript string/,
  ],
  [
    "array vs scalar",
    s => (s.properties!.list = { type: "object" }),
    /\$\.list: TypeScript array, schema type object/,
  ],
  [
    "map values",
    s => (s.properties!.labels.additionalProperties = { type: "integer" }),
    /\$\.labels\{\}: TypeScript string/,
  ],
  [
    "map vs object",
    s => (s.properties!.labels = { type: "object", properties: {} }),
    /\$\.labels: TypeScript Record/,
  ],
];

for (const [what, mutate, expected] of DRIFTS) {
  test(`comparator catches drift: ${what}`, t => {
    const s = good();
    mutate(s);
    const errs = compareShape(inline, s, "$");
    t.true(
      errs.some(e => expected.test(e)),
      errs.join("\n") || "(no differences found)",
    );
  });
}

test("comparator catches a field removed from the real subnet CRD", t => {
  const schema = schemaOf(loadCrd("macvlansubnet.yaml"));
  delete schema.properties!.spec.properties!.mtu;
  schema.properties!.status.properties!.nodes.items!.required = ["node"];
  const errs = compareShape(shapeOf("MacvlanSubnet"), schema, "$", ROOT_OPTS);
  t.true(errs.includes("$.spec.mtu: in TypeScript, missing in the schema"), errs.join("\n"));
  t.true(
    errs.includes("$.status.nodes[].ready: required in TypeScript, optional in the schema"),
    errs.join("\n"),
  );
});

test("comparator catches a TypeScript change against the real lease CRD", t => {
  const source = readFileSync(TYPES_FILE, "utf8").replace(
    'export type LeasePhase = "Reserved" | "Bound" | "Released" | "Conflict";',
    'export type LeasePhase = "Reserved" | "Bound" | "Released" | "Conflict" | "Expired";',
  );
  t.not(source, readFileSync(TYPES_FILE, "utf8"), "the replacement must hit");
  const errs = compareShape(
    shapesFrom(source)("MacvlanLease"),
    schemaOf(loadCrd("macvlanlease.yaml")),
    "$",
    ROOT_OPTS,
  );
  t.true(
    errs.some(e => e.startsWith("$.status.phase: TypeScript union")),
    errs.join("\n"),
  );
});

test("missingDescriptions finds an undocumented nested field", t => {
  const s: Schema = {
    type: "object",
    description: "x",
    properties: { a: { type: "array", description: "a", items: { type: "string" } } },
  };
  t.deepEqual(missingDescriptions(s, "$"), ["$.a[]"]);
});

test("unsupported TypeScript constructs fail loudly instead of passing", t => {
  t.throws(() => shapesFrom("interface X { a: string | number }")("X"), {
    message: /only unions of string literals/,
  });
  t.throws(() => shapesFrom("interface X { a: Map<string, string> }")("X"), {
    message: /generic types/,
  });
  t.throws(() => shapesFrom("interface X { a: Missing }")("X"), {
    message: /no interface, class or type Missing/,
  });
});
