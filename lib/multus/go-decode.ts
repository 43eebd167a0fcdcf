// Decodes the JSON form of the selection annotation into NetworkSelection elements the way Go's
// json.Unmarshal fills multus-cni's []*types.NetworkSelectionElement (pkg/types/types.go):
// - a key selects the field whose tag it equals, else the one it equals case-insensitively
//   under Go's Unicode folding (foldForAsciiTag); unknown keys are skipped;
// - entries apply in source order, so the last of duplicate or case-variant keys wins;
// - null leaves a string or number field as it was and empties a list, pointer or map;
// - a value of the wrong type is an error (Go reports the first and the pod fails);
// - decoding into a list reuses its earlier elements: a null element keeps the old string,
//   an object element merges into the old port mapping; a pointer (bandwidth, cni-args) is
//   merged into, not replaced.
import { foldForAsciiTag, isGoIP } from "./go-text";
import type { GoJsonValue } from "./go-json";
import type { Bandwidth, PortMapping } from "./types";

export class GoDecodeError extends Error {}

type Decoded = Record<string, unknown>;
type FieldDecoder = (value: GoJsonValue, previous: unknown, field: string) => unknown;
type Schema = Record<string, FieldDecoder>;

const typeError = (field: string, expected: string, value: GoJsonValue) =>
  new GoDecodeError(`"${field}" must be ${expected}, not ${describeKind(value)}`);

function describeKind(value: GoJsonValue): string {
  return value.kind === "number" ? `the number ${value.literal}` : `a JSON ${value.kind}`;
}

const decodeString: FieldDecoder = (value, previous, field) => {
  if (value.kind === "string") return value.value;
  if (value.kind === "null") return previous;
  throw typeError(field, "a string", value);
};

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Go's int: an integer literal (no fraction, no exponent) that fits 64 bits. */
const decodeInt: FieldDecoder = (value, previous, field) => {
  if (value.kind === "null") return previous;
  if (value.kind === "number" && /^-?[0-9]+$/.test(value.literal)) {
    const integer = BigInt(value.literal);
    if (integer >= INT64_MIN && integer <= INT64_MAX) return Number(integer);
  }
  throw typeError(field, "an integer", value);
};

/** []string (ips): null becomes nil; a null element keeps the element decoded there before. */
const decodeStringList: FieldDecoder = (value, previous, field) => {
  if (value.kind === "null") return undefined;
  if (value.kind !== "array") throw typeError(field, "a list of strings", value);
  const before = Array.isArray(previous) ? (previous as string[]) : [];
  return value.items.map((item, index) => {
    if (item.kind === "string") return item.value;
    if (item.kind === "null") return before[index] ?? "";
    throw typeError(`${field}[${index}]`, "a string", item);
  });
};

/** *[]net.IP (default-route): each element through net.IP's UnmarshalText; null and "" are nil. */
const decodeIPList: FieldDecoder = (value, _previous, field) => {
  if (value.kind === "null") return undefined;
  if (value.kind !== "array") throw typeError(field, "a list of IP addresses", value);
  return value.items.map((item, index) => {
    if (item.kind === "null") return "";
    if (item.kind !== "string") throw typeError(`${field}[${index}]`, "a string", item);
    if (item.value !== "" && !isGoIP(item.value)) {
      throw new GoDecodeError(
        `"${field}[${index}]": invalid IP address ${JSON.stringify(item.value)}`,
      );
    }
    return item.value;
  });
};

const PORT_MAPPING_SCHEMA: Schema = {
  hostPort: decodeInt,
  containerPort: decodeInt,
  protocol: decodeString,
  hostIP: decodeString,
};

/** []*PortMapEntry: a null element is a nil pointer; an object merges into the old element. */
const decodePortMappings: FieldDecoder = (value, previous, field) => {
  if (value.kind === "null") return undefined;
  if (value.kind !== "array") throw typeError(field, "a list of port mappings", value);
  const before = Array.isArray(previous) ? (previous as (PortMapping | null)[]) : [];
  return value.items.map((item, index) => {
    if (item.kind === "null") return null;
    if (item.kind !== "object") throw typeError(`${field}[${index}]`, "an object", item);
    return decodeStruct(item, PORT_MAPPING_SCHEMA, { ...before[index] }, `${field}[${index}].`);
  });
};

const BANDWIDTH_SCHEMA: Schema = {
  ingressRate: decodeInt,
  ingressBurst: decodeInt,
  egressRate: decodeInt,
  egressBurst: decodeInt,
};

/** *BandwidthEntry: null is nil; an object fills the existing entry. */
const decodeBandwidth: FieldDecoder = (value, previous, field) => {
  if (value.kind === "null") return undefined;
  if (value.kind !== "object") throw typeError(field, "an object", value);
  return decodeStruct(value, BANDWIDTH_SCHEMA, { ...(previous as Bandwidth) }, `${field}.`);
};

/** *map[string]interface{} (cni-args): keys exact, the existing map kept and added to. */
const decodeCniArgs: FieldDecoder = (value, previous, field) => {
  if (value.kind === "null") return undefined;
  if (value.kind !== "object") throw typeError(field, "an object", value);
  const merged: Decoded = Object.assign(Object.create(null), previous);
  for (const entry of value.entries) setOwn(merged, entry.key, decodeAny(entry.value, field));
  return merged;
};

/**
 * interface{}: objects become maps (last duplicate wins), numbers float64, so one beyond its
 * range is an error. Without recursion: Go decodes nesting up to 10000 deep.
 */
function decodeAny(root: GoJsonValue, field: string): unknown {
  const decoded = { root: undefined as unknown };
  const pending: [GoJsonValue, (value: unknown) => void][] = [[root, v => (decoded.root = v)]];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const [value, assign] = next;
    if (value.kind === "object") {
      const map: Decoded = Object.create(null);
      assign(map);
      // Pushed last to first, so popped (and assigned) first to last: the last duplicate wins.
      for (const entry of [...value.entries].reverse()) {
        pending.push([entry.value, v => setOwn(map, entry.key, v)]);
      }
    } else if (value.kind === "array") {
      const list: unknown[] = new Array(value.items.length);
      assign(list);
      value.items.forEach((item, index) => pending.push([item, v => (list[index] = v)]));
    } else {
      assign(decodeScalar(value, field));
    }
  }
  return decoded.root;
}

function decodeScalar(value: GoJsonValue, field: string): unknown {
  if (value.kind === "null") return null;
  if (value.kind !== "number") return "value" in value ? value.value : undefined;
  const number = Number(value.literal);
  if (!Number.isFinite(number)) throw typeError(field, "a float64", value);
  return number;
}

/** Sets a key even when it is `__proto__`. */
function setOwn(target: Decoded, key: string, value: unknown) {
  Object.defineProperty(target, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

/** NetworkSelectionElement's fields by JSON tag. */
export const SELECTION_SCHEMA: Schema = {
  name: decodeString,
  namespace: decodeString,
  ips: decodeStringList,
  mac: decodeString,
  "infiniband-guid": decodeString,
  interface: decodeString,
  interfaceRequest: decodeString,
  portMappings: decodePortMappings,
  bandwidth: decodeBandwidth,
  deviceID: decodeString,
  "cni-args": decodeCniArgs,
  "default-route": decodeIPList,
};

const foldedTags = new WeakMap<Schema, Map<string, string>>();

/** The field a key selects: the exact tag first, else a case-insensitive (folded) match. */
function fieldFor(schema: Schema, key: string): string | undefined {
  if (Object.hasOwn(schema, key)) return key;
  let byFolded = foldedTags.get(schema);
  if (!byFolded) {
    byFolded = new Map(Object.keys(schema).map(tag => [foldForAsciiTag(tag), tag]));
    foldedTags.set(schema, byFolded);
  }
  return byFolded.get(foldForAsciiTag(key));
}

/** Fills `target` from a JSON object, entry by entry in source order. */
export function decodeStruct<T extends object>(
  object: Extract<GoJsonValue, { kind: "object" }>,
  schema: Schema,
  target: T,
  fieldPrefix = "",
): T {
  const fields = target as Decoded;
  for (const { key, value } of object.entries) {
    const field = fieldFor(schema, key);
    if (field === undefined) continue;
    const decoded = schema[field](value, fields[field], fieldPrefix + field);
    if (decoded === undefined) delete fields[field];
    else fields[field] = decoded;
  }
  return target;
}
