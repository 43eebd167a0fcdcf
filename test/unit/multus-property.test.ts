// Property tests for lib/multus: random spellings of network references, each generated with
// what Multus makes of it (a small model of its rules that knows, by construction, which field
// every JSON key was spelled for), checked against the parser and managedReferences.
// Spellings: Go white space around shorthand parts; JSON keys in random case, with ſ for s and
// \u escapes; decoy entries for a field before the one that counts and nulls after it; look-alike
// keys that must not count; values escaped at random; JSON white space between tokens.
import test from "ava";
import fc from "fast-check";
import {
  managedReferences,
  parseDefaultNetwork,
  parseNetworks,
  type NetworkSelection,
} from "../../lib/multus";
import { ANN_MULTUS_DEFAULT, ANN_MULTUS_NETWORKS } from "../../lib/names";

const MANAGED_NAMES = ["macvlan-lan", "macvlan-lab6", "macvlan-x-1"];
const OTHER_NAMES = ["storage", "db", "x"];
const NAMESPACES = ["team-a", "kube-system", "b1"];
const INTERFACES = ["net1", "eth9", "n"];
const POD_NAMESPACE = "pod-ns";
const MULTUS_NAMESPACE = "multus";
const isManaged = (_namespace: string, name: string) => MANAGED_NAMES.includes(name);

/** What Multus resolves a selection to. */
interface Resolved {
  namespace: string;
  name: string;
  interface?: string;
}

const resolvedOf = (s: NetworkSelection): Resolved => ({
  namespace: s.namespace,
  name: s.name,
  ...(s.interface ? { interface: s.interface } : {}),
});

interface Reference {
  name: string;
  namespace?: string;
  interface?: string;
}

const referenceArb: fc.Arbitrary<Reference> = fc.record(
  {
    name: fc.constantFrom(...MANAGED_NAMES, ...OTHER_NAMES),
    namespace: fc.constantFrom(...NAMESPACES),
    interface: fc.constantFrom(...INTERFACES),
  },
  { requiredKeys: ["name"] },
);

// ---- Shorthand: `[ns/]name[@if]`, Go white space (unicode.IsSpace) around every part.

const GO_SPACES = [" ", "\t", "\n", "\v", "\f", "\r", "\u0085", "\u00a0", "\u1680", "\u2000"];
const MORE_GO_SPACES = ["\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000"];
const goPadding = fc
  .array(fc.constantFrom(...GO_SPACES, ...MORE_GO_SPACES), { maxLength: 3 })
  .map(a => a.join(""));

function shorthandItem(ref: Reference): fc.Arbitrary<string> {
  return fc
    .tuple(fc.array(goPadding, { minLength: 6, maxLength: 6 }), fc.boolean())
    .map(([p, slash]) => {
      const namespace =
        ref.namespace !== undefined ? `${ref.namespace}${p[1]}/${p[2]}` : slash ? `/${p[2]}` : "";
      const iface = ref.interface !== undefined ? `@${p[4]}${ref.interface}${p[5]}` : "";
      return `${p[0]}${namespace}${ref.name}${p[3]}${iface}`;
    });
}

const shorthandModel = (ref: Reference, defaultNamespace: string): Resolved => ({
  namespace: ref.namespace ?? defaultNamespace,
  name: ref.name,
  ...(ref.interface !== undefined ? { interface: ref.interface } : {}),
});

// ---- JSON: one object per reference, entries spelled at random.

/** The field Multus decodes an entry into; "none" for keys that must not match. */
type Field = "name" | "namespace" | "interface" | "interfaceRequest" | "none";

interface Entry {
  field: Field;
  key: string;
  /** null: JSON null. */
  value: string | null;
}

const jsonSpace = fc
  .array(fc.constantFrom(" ", "\t", "\n", "\r"), { maxLength: 2 })
  .map(a => a.join(""));
const escape = (c: string, upper: boolean) => {
  const hex = c.charCodeAt(0).toString(16).padStart(4, "0");
  return `\\u${upper ? hex.toUpperCase() : hex}`;
};

/** A key Multus matches to `tag`: any ASCII case, ſ for s, K for k, any character \u-escaped. */
function keySpelling(tag: string): fc.Arbitrary<string> {
  const characters = [...tag].map(c =>
    fc
      .tuple(fc.constantFrom("lower", "upper", "fold"), fc.boolean(), fc.boolean())
      .map(([form, esc, upper]) => {
        const folded = c === "s" ? "\u017f" : c === "k" ? "\u212a" : c;
        const spelled = form === "upper" ? c.toUpperCase() : form === "fold" ? folded : c;
        return esc ? escape(spelled, upper) : JSON.stringify(spelled).slice(1, -1);
      }),
  );
  return fc.tuple(...characters).map(parts => parts.join(""));
}

/** Keys Multus must ignore: look-alikes that do not fold (Cyrillic е, dotless ı) and others. */
const lookAlikeKey = fc.constantFrom(
  "nam\u0435",
  "nam\u0435\u017fpace",
  "\u0131nterface",
  "n\u0430me",
  "names",
  "nam",
  "x-name",
  "network",
);

/** A JSON string for `value`, characters escaped at random. */
function valueSpelling(value: string): fc.Arbitrary<string> {
  if (value === "") return fc.constant('""');
  const characters = [...value].map(c =>
    fc.tuple(fc.boolean(), fc.boolean()).map(([esc, upper]) => (esc ? escape(c, upper) : c)),
  );
  return fc.tuple(...characters).map(parts => `"${parts.join("")}"`);
}

const decoyValue = fc.constantFrom(...MANAGED_NAMES, ...OTHER_NAMES, ...NAMESPACES, "", "decoy");

/** Entries for one field: decoys (values or nulls) first, then the real value, then nulls. */
function fieldEntries(field: Exclude<Field, "none">, real: string): fc.Arbitrary<Entry[]> {
  const entry = (value: fc.Arbitrary<string | null>) =>
    fc.record({ field: fc.constant(field), key: keySpelling(field), value });
  return fc
    .tuple(
      fc.array(entry(fc.option(decoyValue, { nil: null })), { maxLength: 2 }),
      entry(fc.constant(real)),
      fc.array(entry(fc.constant(null)), { maxLength: 1 }),
    )
    .map(([decoys, last, nulls]) => [...decoys, last, ...nulls]);
}

const noiseEntries: fc.Arbitrary<Entry[]> = fc.array(
  fc.record({
    field: fc.constant<Field>("none"),
    key: lookAlikeKey,
    value: fc.option(decoyValue, { nil: null }),
  }),
  { maxLength: 2 },
);

/** Interleaves the fields' entries at random, keeping each field's own order. */
function interleave(groups: Entry[][], order: number[]): Entry[] {
  const queues = groups.map(g => [...g]);
  const slots = groups.flatMap((g, i) => g.map(() => i));
  const shuffled = slots
    .map((group, i) => ({ group, rank: order[i % order.length] ?? 0, i }))
    .sort((a, b) => a.rank - b.rank || a.i - b.i);
  return shuffled.map(({ group }) => queues[group].shift()!);
}

interface JsonSpelling {
  entries: Entry[];
  text: string;
}

function jsonObject(ref: Reference): fc.Arbitrary<JsonSpelling> {
  const groups: fc.Arbitrary<Entry[]>[] = [fieldEntries("name", ref.name), noiseEntries];
  groups.push(fieldEntries("namespace", ref.namespace ?? ""));
  if (ref.interface !== undefined) {
    groups.push(
      fc
        .constantFrom<Exclude<Field, "none">>("interface", "interfaceRequest")
        .chain(f => fieldEntries(f, ref.interface!)),
    );
  }
  return fc
    .tuple(fc.tuple(...groups), fc.array(fc.integer({ min: 0, max: 99 }), { minLength: 1 }))
    .chain(([entryGroups, order]) => {
      const entries = interleave(entryGroups, order);
      const spelled = entries.map(e =>
        fc
          .tuple(
            jsonSpace,
            jsonSpace,
            jsonSpace,
            e.value === null ? fc.constant("null") : valueSpelling(e.value),
          )
          .map(([a, b, c, value]) => `${a}"${e.key}"${b}:${c}${value}`),
      );
      return fc.tuple(...spelled).map(parts => ({ entries, text: `{${parts.join(",")}}` }));
    });
}

/** Multus' rule, from the entries: the last non-null value of each field wins. */
function jsonModel(entries: Entry[], defaultNamespace: string): Resolved {
  const last = (field: Field) =>
    entries.filter(e => e.field === field && e.value !== null).at(-1)?.value ?? "";
  const iface = last("interface") || last("interfaceRequest");
  return {
    namespace: last("namespace") || defaultNamespace,
    name: last("name"),
    ...(iface ? { interface: iface } : {}),
  };
}

// ---- Annotations: a list of references in one form, and what Multus makes of it.

interface Spelling {
  text: string;
  model: (defaultNamespace: string) => Resolved[];
  json: boolean;
}

function spellingOf(refs: Reference[]): fc.Arbitrary<Spelling> {
  const shorthand = fc.tuple(...refs.map(shorthandItem)).map(items => ({
    text: items.join(","),
    model: (ns: string) => refs.map(r => shorthandModel(r, ns)),
    json: false,
  }));
  const json = fc
    .tuple(jsonSpace, jsonSpace, fc.tuple(...refs.map(jsonObject)))
    .map(([before, after, objects]) => ({
      text: `${before}[${objects.map(o => o.text).join(",")}]${after}`,
      model: (ns: string) => objects.map(o => jsonModel(o.entries, ns)),
      json: true,
    }));
  return fc.oneof(shorthand, json);
}

const networksArb = fc.array(referenceArb, { minLength: 1, maxLength: 3 }).chain(spellingOf);
const defaultNetworkArb = referenceArb.chain(ref => spellingOf([ref]));

test("networks: the parser reads every spelling as Multus does", t => {
  fc.assert(
    fc.property(networksArb, ({ text, model }) => {
      const parsed = parseNetworks(text, POD_NAMESPACE);
      if (!parsed.ok) throw new Error(`${JSON.stringify(text)}: ${parsed.error}`);
      t.deepEqual(parsed.selections.map(resolvedOf), model(POD_NAMESPACE));
    }),
    { numRuns: 1000 },
  );
});

test("default network: the parser reads every spelling as Multus does", t => {
  fc.assert(
    fc.property(defaultNetworkArb, ({ text, model }) => {
      const parsed = parseDefaultNetwork(text, { multusNamespace: MULTUS_NAMESPACE });
      if (!parsed.ok) throw new Error(`${JSON.stringify(text)}: ${parsed.error}`);
      t.deepEqual(parsed.selections.map(resolvedOf), model(MULTUS_NAMESPACE));
    }),
    { numRuns: 500 },
  );
});

const managedOf = (annotation: string, resolved: Resolved[]) =>
  resolved
    .filter(r => isManaged(r.namespace, r.name))
    .map(r => ({ annotation, namespace: r.namespace, name: r.name }));

test("managedReferences finds every spelling of a managed name in both annotations", t => {
  fc.assert(
    fc.property(networksArb, defaultNetworkArb, (networks, defaultNetwork) => {
      const annotations = {
        [ANN_MULTUS_NETWORKS]: networks.text,
        [ANN_MULTUS_DEFAULT]: defaultNetwork.text,
      };
      const found = managedReferences(annotations, POD_NAMESPACE, isManaged, {
        multusNamespace: MULTUS_NAMESPACE,
      });
      t.deepEqual(found.unparseable, []);
      t.deepEqual(found.refs, [
        ...managedOf(ANN_MULTUS_NETWORKS, networks.model(POD_NAMESPACE)),
        ...managedOf(ANN_MULTUS_DEFAULT, defaultNetwork.model(MULTUS_NAMESPACE)),
      ]);
    }),
    { numRuns: 500 },
  );
});

test("managedReferences still finds them when a later check fails (a bad MAC)", t => {
  const jsonNetworks = networksArb.filter(s => s.json);
  fc.assert(
    fc.property(jsonNetworks, ({ text, model }) => {
      const withBadMac = text.replace(/\{/, '{"mac":"00:11:22:33:44:5g",');
      const annotations = { [ANN_MULTUS_NETWORKS]: withBadMac };
      const found = managedReferences(annotations, POD_NAMESPACE, isManaged);
      t.deepEqual(
        found.unparseable.map(u => u.annotation),
        [ANN_MULTUS_NETWORKS],
      );
      t.deepEqual(found.refs, managedOf(ANN_MULTUS_NETWORKS, model(POD_NAMESPACE)));
    }),
    { numRuns: 200 },
  );
});

/** Text near the grammar: JSON and shorthand pieces, look-alike characters, garbage. */
const jsonish = fc
  .array(
    fc.oneof(
      fc.constantFrom("[", "]", "{", "}", ",", ":", '"', "\\", "/", "@", " ", "\u0085", "\ufeff"),
      fc.constantFrom('"name"', '"NAMEſPACE"', '"ips"', '"mac"', "null", "1e400", "-0", "\\u006e"),
      fc.constantFrom("macvlan-lan", "ns", "\ud800", "\u0131"),
      fc.string({ maxLength: 3 }),
    ),
    { maxLength: 24 },
  )
  .map(parts => parts.join(""));

test("any text: no exception, and what parses reads back the same from JSON", t => {
  const anyText = fc.oneof(jsonish, fc.json(), fc.string({ unit: "binary", maxLength: 40 }));
  fc.assert(
    fc.property(anyText, text => {
      for (const parsed of [parseNetworks(text, POD_NAMESPACE), parseDefaultNetwork(text)]) {
        if (!parsed.ok) continue;
        const written = JSON.stringify(parsed.selections);
        const again = parseNetworks(written, "elsewhere");
        t.true(again.ok && JSON.stringify(again.selections) === written, written);
      }
      managedReferences(
        { [ANN_MULTUS_NETWORKS]: text, [ANN_MULTUS_DEFAULT]: text },
        "a",
        isManaged,
      );
    }),
    { numRuns: 2000 },
  );
});
