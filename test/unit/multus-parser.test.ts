// Example cases for lib/multus: each Multus rule (multus-cni v4.2.3 / v4.3.0,
// pkg/k8sclient/k8sclient.go) with the spellings a tenant could use to hide a network name.
// Every expectation here was checked against Multus' own parsePodNetworkAnnotation (v4.2.3).
import test, { type ExecutionContext } from "ava";
import {
  managedReferences,
  parseDefaultNetwork,
  parseNetworks,
  type NetworkSelection,
  type ParseResult,
} from "../../lib/multus";
import { foldForAsciiTag, goTrimSpace } from "../../lib/multus/go-text";
import { ANN_MULTUS_DEFAULT, ANN_MULTUS_NETWORKS } from "../../lib/names";

function selectionsOf(t: ExecutionContext, result: ParseResult): NetworkSelection[] {
  if (!result.ok) {
    t.fail(`expected selections, got the error: ${result.error}`);
    return [];
  }
  return result.selections;
}

function errorOf(t: ExecutionContext, result: ParseResult): string {
  if (result.ok) {
    t.fail(`expected an error, got ${JSON.stringify(result.selections)}`);
    return "";
  }
  return result.error;
}

const networks = (t: ExecutionContext, text: string, podNamespace = "pod-ns") =>
  selectionsOf(t, parseNetworks(text, podNamespace));
const networksError = (t: ExecutionContext, text: string) =>
  errorOf(t, parseNetworks(text, "pod-ns"));
/** Name and namespace of the only selection. */
const onlyNetwork = (t: ExecutionContext, text: string) => {
  const [selection, ...rest] = networks(t, text);
  t.is(rest.length, 0);
  return selection && `${selection.namespace}/${selection.name}`;
};

test("JSON and the ns/name@if shorthand (the cases render.test.ts had)", t => {
  t.deepEqual(networks(t, '[{"name":"x"}]'), [{ name: "x", namespace: "pod-ns" }]);
  t.deepEqual(networks(t, "other/y@net5, z"), [
    { name: "y", namespace: "other", interface: "net5" },
    { name: "z", namespace: "pod-ns" },
  ]);
  t.deepEqual(parseNetworks(undefined, "ns"), { ok: true, selections: [] });
  t.regex(networksError(t, "[{}]"), /selection 1 names no network/);
});

test("absent or empty networks annotation: no networks (GetPodNetwork)", t => {
  t.deepEqual(networks(t, ""), []);
  t.deepEqual(networks(t, "[]"), []);
});

test("shorthand: every part is TrimSpace'd", t => {
  t.deepEqual(networks(t, "ns/nad @net1"), [{ name: "nad", namespace: "ns", interface: "net1" }]);
  t.is(onlyNetwork(t, "ns/ nad"), "ns/nad");
  t.is(onlyNetwork(t, " ns /\tmacvlan-lan\n"), "ns/macvlan-lan");
  t.deepEqual(networks(t, "x@ net1 "), [{ name: "x", namespace: "pod-ns", interface: "net1" }]);
  t.deepEqual(networks(t, "x@"), [{ name: "x", namespace: "pod-ns" }]);
  t.is(onlyNetwork(t, "/macvlan-lan"), "pod-ns/macvlan-lan", "an empty namespace is the pod's");
});

test("shorthand: Go's TrimSpace, not JavaScript's trim (U+0085 and U+3000 go, U+FEFF stays)", t => {
  t.is(onlyNetwork(t, "macvlan-lan\u0085"), "pod-ns/macvlan-lan");
  t.is(onlyNetwork(t, "\u3000macvlan-lan\u00a0"), "pod-ns/macvlan-lan");
  t.regex(networksError(t, "macvlan-lan\ufeff"), /not a DNS-1123 label/);
  t.is(goTrimSpace("\u2028\u1680 a \u205f"), "a");
  t.is(goTrimSpace("\u200ba"), "\u200ba", "a zero-width space is not white space");
});

test("shorthand: namespace and name must be DNS-1123 labels", t => {
  t.regex(networksError(t, " NAME "), /"NAME" is not a DNS-1123 label/);
  t.regex(networksError(t, "Team-A/macvlan-lan"), /"Team-A" is not a DNS-1123 label/);
  t.regex(networksError(t, "-lan"), /DNS-1123/);
  t.regex(networksError(t, "mac\u0430vlan"), /DNS-1123/, "a Cyrillic а is no label character");
  const long = "a".repeat(80);
  t.is(onlyNetwork(t, long), `pod-ns/${long}`, "Multus checks no length");
});

test("shorthand: extra / or @ is refused", t => {
  t.regex(networksError(t, "a/b/c"), /selection 1 \("a\/b\/c"\): more than one "\/"/);
  t.regex(networksError(t, "ok, a@b@c"), /selection 2 .*more than one "@"/);
});

test("shorthand: interface names at most 15 bytes, no spaces or /", t => {
  t.is(networks(t, "x@0123456789abcde")[0].interface, "0123456789abcde");
  t.regex(networksError(t, "x@0123456789abcdef"), /at most 15 bytes/);
  t.regex(networksError(t, "x@ééééééééé"), /at most 15 bytes/, "bytes, not characters");
  t.regex(networksError(t, "x@net 1"), /interface name "net 1"/);
});

test("shorthand: empty items name no network (Multus fails such a pod at lookup)", t => {
  t.regex(networksError(t, "a,,b"), /selection 2 names no network/);
  t.regex(networksError(t, "a,"), /selection 2 names no network/);
  t.regex(networksError(t, " "), /selection 1 names no network/);
  t.regex(networksError(t, "ns/"), /selection 1 names no network/);
});

test('JSON is chosen when [, { or " appears anywhere (strings.ContainsAny)', t => {
  t.regex(networksError(t, 'macvlan-lan"'), /not valid JSON/);
  t.regex(networksError(t, "ns/x@{"), /not valid JSON/);
  t.is(onlyNetwork(t, '\n [ {"name" : "macvlan-lan"} ]\r\t'), "pod-ns/macvlan-lan");
});

test("JSON must be a list: a single object is refused, as are null elements", t => {
  t.regex(networksError(t, '{"name":"macvlan-lan"}'), /list of selections, not a single object/);
  t.regex(networksError(t, '"macvlan-lan"'), /not a JSON string/);
  t.regex(networksError(t, "[null]"), /selection 1 must be a JSON object, not null/);
  t.regex(networksError(t, '["macvlan-lan"]'), /must be a JSON object, not string/);
});

test("JSON is strict: trailing commas, trailing text, leading zeros are errors", t => {
  t.regex(networksError(t, '[{"name":"x",}]'), /looking for beginning of object key string/);
  t.regex(networksError(t, '[{"name":"x"}] x'), /after top-level value/);
  t.regex(networksError(t, '[{"name":"x"}]\u00a0'), /U\+00A0 after top-level value/);
  t.regex(networksError(t, '[{"name":"x","n":01}]'), /after object key:value pair/);
  t.regex(networksError(t, '[{"name":"x\u0001"}]'), /in string literal/);
  t.regex(networksError(t, '[{"name":"x"}'), /unexpected end of JSON input/);
});

test("JSON keys match case-insensitively", t => {
  t.is(onlyNetwork(t, '[{"NAME":"macvlan-lan"}]'), "pod-ns/macvlan-lan");
  t.is(onlyNetwork(t, '[{"nAmE":"macvlan-lan","NameSpace":"team-b"}]'), "team-b/macvlan-lan");
});

test("JSON duplicate keys: the last one wins, across casings too", t => {
  t.is(onlyNetwork(t, '[{"name":"decoy","Name":"macvlan-lan"}]'), "pod-ns/macvlan-lan");
  t.is(onlyNetwork(t, '[{"name":"decoy","NAME":"real"}]'), "pod-ns/real");
  t.is(onlyNetwork(t, '[{"name":"decoy","name":"macvlan-lan"}]'), "pod-ns/macvlan-lan");
});

test("JSON null leaves a string field as it was", t => {
  t.is(onlyNetwork(t, '[{"name":"macvlan-lan","NAME":null}]'), "pod-ns/macvlan-lan");
  t.regex(networksError(t, '[{"name":null}]'), /names no network/);
  t.is(onlyNetwork(t, '[{"name":"x","namespace":null}]'), "pod-ns/x");
});

test("JSON keys are unescaped before matching", t => {
  t.is(onlyNetwork(t, '[{"\\u006eame":"macvlan-lan"}]'), "pod-ns/macvlan-lan");
  t.is(onlyNetwork(t, '[{"\\u004E\\u0041ME":"\\u006dacvlan-lan"}]'), "pod-ns/macvlan-lan");
  t.is(onlyNetwork(t, '[{"name":"decoy","n\\u0061me":"macvlan-lan"}]'), "pod-ns/macvlan-lan");
});

test("JSON keys fold under Go's Unicode simple folding: ſ is s, K (Kelvin) is k", t => {
  t.is(onlyNetwork(t, '[{"name":"macvlan-lan","nameſpace":"victim"}]'), "victim/macvlan-lan");
  t.is(onlyNetwork(t, '[{"name":"x","NAMEſPACE":"victim"}]'), "victim/x");
  t.is(onlyNetwork(t, '[{"name":"x","name\\u017fpace":"victim"}]'), "victim/x");
  t.is(foldForAsciiTag("\u212a"), foldForAsciiTag("k"));
  t.is(foldForAsciiTag("\u017f"), foldForAsciiTag("S"));
});

test("look-alikes that do not fold are unknown keys, ignored", t => {
  // Cyrillic е (U+0435) in "namеſpace"; dotless ı (U+0131) and İ do not fold to i in Go.
  t.is(onlyNetwork(t, '[{"name":"x","nam\u0435\u017fpace":"victim"}]'), "pod-ns/x");
  t.deepEqual(networks(t, '[{"name":"x","\u0131nterface":"net9","\u0130ps":["zz"]}]'), [
    { name: "x", namespace: "pod-ns" },
  ]);
  t.deepEqual(networks(t, '[{"name":"x","whatever":{"deep":[1,{"a":null}]}}]'), [
    { name: "x", namespace: "pod-ns" },
  ]);
});

test("JSON values: a non-string name is an error; names are not trimmed or checked", t => {
  t.regex(
    networksError(t, '[{"name":5}]'),
    /selection 1: "name" must be a string, not the number 5/,
  );
  t.regex(networksError(t, '[{"name":["macvlan-lan"]}]'), /"name" must be a string/);
  t.is(onlyNetwork(t, '[{"name":" macvlan-lan"}]'), "pod-ns/ macvlan-lan");
  t.is(onlyNetwork(t, '[{"name":"x","namespace":"A B"}]'), "A B/x");
});

test("JSON strings: escapes decode, an unpaired surrogate becomes U+FFFD", t => {
  t.is(onlyNetwork(t, '[{"name":"\\ud800x"}]'), "pod-ns/\ufffdx");
  t.is(onlyNetwork(t, '[{"name":"\\ud83d\\ude00"}]'), "pod-ns/\u{1f600}");
  t.is(onlyNetwork(t, '[{"name":"a\\/b\\tc"}]'), "pod-ns/a/b\tc");
});

test("interfaceRequest (pre-3.2) fills an empty interface", t => {
  t.is(networks(t, '[{"name":"n","interfaceRequest":"net7"}]')[0].interface, "net7");
  t.is(networks(t, '[{"name":"n","interfaceRequest":"a","interface":"b"}]')[0].interface, "b");
  t.is(
    networks(t, '[{"name":"n","interface":"a b c d e f g h i"}]')[0].interface,
    "a b c d e f g h i",
  );
});

test("mac and infiniband-guid must be net.ParseMAC addresses", t => {
  for (const mac of ["00:11:22:33:44:55", "00-11-22-33-44-55-66-77", "0011.2233.4455"]) {
    t.is(networks(t, `[{"name":"n","mac":"${mac}"}]`)[0].mac, mac);
  }
  t.regex(networksError(t, '[{"name":"n","mac":"00:11-22:33:44:55"}]'), /"mac" .* not a MAC/);
  // Bare hex is a MAC only from Go 1.26; Multus v4.2.3 and v4.3.0 are built with Go 1.24 / 1.25.
  t.regex(networksError(t, '[{"name":"n","mac":"001122334455"}]'), /not a MAC/);
  t.regex(networksError(t, '[{"name":"n","infiniband-guid":"bad"}]'), /"infiniband-guid"/);
  t.deepEqual(networks(t, '[{"name":"n","mac":""}]'), [{ name: "n", namespace: "pod-ns" }]);
});

test("ips entries must parse as net.ParseIP, or net.ParseCIDR with a /", t => {
  const ips = ["198.18.0.7/24", "198.18.0.7/024", "2001:db8::7/64", "::ffff:1.2.3.4/120", "::1"];
  t.deepEqual(networks(t, JSON.stringify([{ name: "n", ips }]))[0].ips, ips);
  for (const bad of ["01.2.3.4", "fe80::1%eth0", "1.2.3.4/33", "1.2.3.4/", " 1.2.3.4", ""]) {
    t.regex(networksError(t, JSON.stringify([{ name: "n", ips: [bad] }])), /"ips" entry/, bad);
  }
  t.regex(networksError(t, '[{"name":"n","ips":"1.2.3.4"}]'), /"ips" must be a list of strings/);
});

test("decoding into a list reuses it: a null element keeps the old string", t => {
  const text = '[{"name":"n","ips":["1.2.3.4","5.6.7.8"],"ips":[null]}]';
  t.deepEqual(networks(t, text)[0].ips, ["1.2.3.4"]);
  t.false("ips" in networks(t, '[{"name":"n","ips":["1.2.3.4"],"ips":null}]')[0]);
});

test('default-route entries are IP addresses (no prefix); null and "" are empty', t => {
  const route = networks(t, '[{"name":"n","default-route":["198.18.0.1",null,""]}]');
  t.deepEqual(route[0]["default-route"], ["198.18.0.1", "", ""]);
  t.regex(networksError(t, '[{"name":"n","default-route":["1.2.3.4/24"]}]'), /invalid IP/);
  t.regex(networksError(t, '[{"name":"n","default-route":[5]}]'), /must be a string/);
});

test("the other Multus fields are typed like Go's and kept for rewriting", t => {
  const text =
    '[{"name":"n","deviceID":"0000:03:00.1","portMappings":[{"hostPort":80,"containerPort":8080},null],' +
    '"bandwidth":{"ingressRate":1},"BANDWIDTH":{"egressRate":2},' +
    '"cni-args":{"a":1,"a":2,"__proto__":{"x":true}},"cni-args":{"b":null}}]';
  const [selection] = networks(t, text);
  t.is(selection.deviceID, "0000:03:00.1");
  t.deepEqual(selection.portMappings, [{ hostPort: 80, containerPort: 8080 }, null]);
  t.deepEqual(selection.bandwidth, { ingressRate: 1, egressRate: 2 }, "a pointer is merged into");
  t.is(
    JSON.stringify(selection["cni-args"]),
    '{"a":2,"__proto__":{"x":true},"b":null}',
    "a map is kept and added to",
  );
  t.regex(networksError(t, '[{"name":"n","portMappings":[{"hostPort":1.0}]}]'), /integer/);
  t.regex(networksError(t, '[{"name":"n","bandwidth":{"egressBurst":"1"}}]'), /integer/);
  t.regex(networksError(t, '[{"name":"n","cni-args":{"a":1e400}}]'), /float64/);
  t.regex(networksError(t, '[{"name":"n","deviceID":5}]'), /"deviceID" must be a string/);
});

test("nesting: Go's limit of 10000 levels, with no stack overflow", t => {
  const nested = (depth: number) => "[".repeat(depth) + "]".repeat(depth);
  t.is(onlyNetwork(t, `[{"name":"macvlan-lan","junk":${nested(9998)}}]`), "pod-ns/macvlan-lan");
  t.regex(networksError(t, `[{"name":"macvlan-lan","junk":${nested(9999)}}]`), /max depth/);
  t.regex(networksError(t, nested(200000)), /max depth/);
});

test("a parsed selection list written back as JSON reads the same", t => {
  const text = " x@net3 , ns/y ";
  const json =
    '[{"NAME":"a","nameſpace":"b","interfaceRequest":"net2","ips":["1.2.3.4/24"],"mac":"0011.2233.4455",' +
    '"default-route":["1.2.3.1"],"bandwidth":{"ingressRate":5},"cni-args":{"k":[1]}}]';
  for (const input of [text, json]) {
    const first = networks(t, input);
    t.deepEqual(networks(t, JSON.stringify(first)), first);
  }
});

test("default network: a plain name is looked up in Multus' namespace, not the pod's", t => {
  t.deepEqual(selectionsOf(t, parseDefaultNetwork("macvlan-lan")), [
    { name: "macvlan-lan", namespace: "kube-system" },
  ]);
  const options = { multusNamespace: "multus" };
  t.is(selectionsOf(t, parseDefaultNetwork("macvlan-lan", options))[0].namespace, "multus");
  t.deepEqual(parseDefaultNetwork(undefined), { ok: true, selections: [] });
});

test("default network: ns/name and a JSON list of one", t => {
  t.deepEqual(selectionsOf(t, parseDefaultNetwork(" team-a / macvlan-lan ")), [
    { name: "macvlan-lan", namespace: "team-a" },
  ]);
  const json = '[{"Name":"macvlan-lan","namespace":"team-a","ips":["198.18.0.9/24"]}]';
  t.deepEqual(selectionsOf(t, parseDefaultNetwork(json)), [
    { name: "macvlan-lan", namespace: "team-a", ips: ["198.18.0.9/24"] },
  ]);
});

test("default network: exactly one network; no single object, no empty annotation", t => {
  t.regex(errorOf(t, parseDefaultNetwork("a,b")), /exactly one network, not 2/);
  t.regex(errorOf(t, parseDefaultNetwork("[]")), /exactly one network, not 0/);
  t.regex(errorOf(t, parseDefaultNetwork("")), /it is empty/);
  t.regex(errorOf(t, parseDefaultNetwork('{"name":"x"}')), /not a single object/);
});

const isManaged = (_namespace: string, name: string) => name.startsWith("macvlan-");

test("managedReferences: both annotations, any namespace, as Multus resolves them", t => {
  const found = managedReferences(
    {
      [ANN_MULTUS_NETWORKS]: "storage, other/macvlan-lan@net1",
      [ANN_MULTUS_DEFAULT]: "macvlan-lab6",
      unrelated: "macvlan-lan",
    },
    "team-a",
    isManaged,
  );
  t.deepEqual(found, {
    refs: [
      { annotation: ANN_MULTUS_NETWORKS, namespace: "other", name: "macvlan-lan" },
      { annotation: ANN_MULTUS_DEFAULT, namespace: "kube-system", name: "macvlan-lab6" },
    ],
    unparseable: [],
  });
  t.deepEqual(managedReferences(undefined, "a", isManaged), { refs: [], unparseable: [] });
});

test("managedReferences: isManaged sees the resolved namespace", t => {
  const seen: string[] = [];
  managedReferences(
    { [ANN_MULTUS_NETWORKS]: '[{"name":"a"},{"name":"b","namespace":"c"}]' },
    "pod-ns",
    (namespace, name) => (seen.push(`${namespace}/${name}`), false),
    { multusNamespace: "multus" },
  );
  t.deepEqual(seen, ["pod-ns/a", "c/b"]);
});

test("managedReferences: references count even when a later check fails", t => {
  const found = managedReferences(
    {
      [ANN_MULTUS_NETWORKS]: '[{"n\\u0061me":"macvlan-lan","mac":"001122334455"}]',
      [ANN_MULTUS_DEFAULT]: "macvlan-lan, macvlan-lab6",
    },
    "team-a",
    isManaged,
  );
  t.deepEqual(
    found.refs.map(r => `${r.annotation} ${r.namespace}/${r.name}`),
    [
      `${ANN_MULTUS_NETWORKS} team-a/macvlan-lan`,
      `${ANN_MULTUS_DEFAULT} kube-system/macvlan-lan`,
      `${ANN_MULTUS_DEFAULT} kube-system/macvlan-lab6`,
    ],
  );
  t.deepEqual(
    found.unparseable.map(u => u.annotation),
    [ANN_MULTUS_NETWORKS, ANN_MULTUS_DEFAULT],
  );
});

test("managedReferences: an unreadable annotation is reported with what is wrong", t => {
  const found = managedReferences(
    { [ANN_MULTUS_NETWORKS]: '{"name":"macvlan-lan"}', [ANN_MULTUS_DEFAULT]: "" },
    "team-a",
    isManaged,
  );
  t.deepEqual(found.refs, []);
  t.deepEqual(found.unparseable, [
    {
      annotation: ANN_MULTUS_NETWORKS,
      error: "the JSON must be a list of selections, not a single object",
    },
    { annotation: ANN_MULTUS_DEFAULT, error: "it is empty; it must name one network" },
  ]);
});
