// One selection annotation's text to selections, in parsePodNetworkAnnotation's two steps:
// reading (JSON or shorthand; what names the networks) and checking each selection.
import { decodeStruct, GoDecodeError, SELECTION_SCHEMA } from "./go-decode";
import { GoJsonSyntaxError, parseGoJson } from "./go-json";
import { isGoCIDR, isGoIP, isGoMac } from "./go-text";
import { parseShorthandList, SelectionError } from "./shorthand";
import type { NetworkSelection, ParseResult } from "./types";

/** A selection's fields by JSON tag, as decoded, before defaulting and checks. */
export type RawSelection = Record<string, unknown>;

export type ReadResult = { ok: true; raw: RawSelection[] } | { ok: false; error: string };

/**
 * parsePodNetworkAnnotation's first step: JSON when the text contains any of `[`, `{` or `"`
 * anywhere (strings.ContainsAny), else the comma-separated shorthand.
 */
export function readSelections(annotation: string): ReadResult {
  const text = asGoString(annotation);
  try {
    const raw = /[[{"]/.test(text) ? decodeJsonSelections(text) : shorthandSelections(text);
    return { ok: true, raw };
  } catch (e) {
    if (e instanceof GoJsonSyntaxError) return { ok: false, error: `not valid JSON: ${e.message}` };
    if (e instanceof GoDecodeError || e instanceof SelectionError) {
      return { ok: false, error: e.message };
    }
    throw e;
  }
}

/**
 * The text as Multus can see it: Go strings are UTF-8, so an unpaired UTF-16 surrogate (which
 * the apiserver would have turned into U+FFFD) is U+FFFD here too.
 */
function asGoString(text: string): string {
  return text.replace(
    /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g,
    "\ufffd",
  );
}

function shorthandSelections(text: string): RawSelection[] {
  return parseShorthandList(text).map(ref => ({ ...ref }));
}

/** json.Unmarshal into []*NetworkSelectionElement: a list (a lone object is a type error). */
function decodeJsonSelections(text: string): RawSelection[] {
  const document = parseGoJson(text);
  if (document.kind !== "array") {
    const what = document.kind === "object" ? "a single object" : `a JSON ${document.kind}`;
    throw new SelectionError(`the JSON must be a list of selections, not ${what}`);
  }
  return document.items.map((item, index) => {
    // A null element decodes to a nil pointer, which parsePodNetworkAnnotation dereferences.
    if (item.kind !== "object") {
      throw new SelectionError(`selection ${index + 1} must be a JSON object, not ${item.kind}`);
    }
    try {
      return decodeStruct(item, SELECTION_SCHEMA, {} as RawSelection);
    } catch (e) {
      if (!(e instanceof GoDecodeError)) throw e;
      throw new GoDecodeError(`selection ${index + 1}: ${e.message}`);
    }
  });
}

export const stringField = (fields: RawSelection, key: string) =>
  typeof fields[key] === "string" ? (fields[key] as string) : "";

/** The network a selection names, in the namespace Multus looks it up in. */
export function networkOf(fields: RawSelection, defaultNamespace: string) {
  return {
    namespace: stringField(fields, "namespace") || defaultNamespace,
    name: stringField(fields, "name"),
  };
}

/** parsePodNetworkAnnotation's second step, over every selection read. */
export function checkSelections(raw: RawSelection[], defaultNamespace: string): ParseResult {
  try {
    return {
      ok: true,
      selections: raw.map((fields, index) => checkSelection(fields, index, defaultNamespace)),
    };
  } catch (e) {
    if (e instanceof SelectionError) return { ok: false, error: e.message };
    throw e;
  }
}

/**
 * parsePodNetworkAnnotation's loop: an empty namespace becomes the default one; mac and
 * infiniband-guid must parse as net.ParseMAC; each ips entry as net.ParseCIDR when it holds "/",
 * else net.ParseIP; `interfaceRequest` fills an empty `interface`. One rule is ours: an empty name
 * is refused here, because Multus accepts it only to fail the pod when the lookup
 * (getKubernetesDelegate) finds no such network.
 */
function checkSelection(fields: RawSelection, index: number, defaultNamespace: string) {
  const where = `selection ${index + 1}`;
  const { namespace, name } = networkOf(fields, defaultNamespace);
  if (name === "") throw new SelectionError(`${where} names no network`);
  for (const key of ["mac", "infiniband-guid"]) {
    const mac = stringField(fields, key);
    if (mac !== "" && !isGoMac(mac)) {
      throw new SelectionError(`${where}: "${key}" ${JSON.stringify(mac)} is not a MAC address`);
    }
  }
  for (const ip of (fields.ips as string[] | undefined) ?? []) {
    if (!(ip.includes("/") ? isGoCIDR(ip) : isGoIP(ip))) {
      throw new SelectionError(`${where}: "ips" entry ${JSON.stringify(ip)} is not an IP or CIDR`);
    }
  }
  return toNetworkSelection(fields, name, namespace);
}

/** The canonical spelling: Multus' own keys, empty strings left out (they mean unset). */
function toNetworkSelection(fields: RawSelection, name: string, namespace: string) {
  const selection: NetworkSelection = { name, namespace };
  const iface = stringField(fields, "interface") || stringField(fields, "interfaceRequest");
  if (iface) selection.interface = iface;
  if (fields.ips) selection.ips = fields.ips as string[];
  if (stringField(fields, "mac")) selection.mac = stringField(fields, "mac");
  if (fields["default-route"]) selection["default-route"] = fields["default-route"] as string[];
  const guid = stringField(fields, "infiniband-guid");
  if (guid) selection["infiniband-guid"] = guid;
  if (stringField(fields, "deviceID")) selection.deviceID = stringField(fields, "deviceID");
  const { portMappings, bandwidth } = fields as Partial<NetworkSelection>;
  if (portMappings) selection.portMappings = portMappings;
  if (bandwidth) selection.bandwidth = bandwidth;
  const cniArgs = fields["cni-args"] as NetworkSelection["cni-args"];
  if (cniArgs) selection["cni-args"] = cniArgs;
  return selection;
}
