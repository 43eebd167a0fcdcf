import test from "ava";
import { MacvlanSubnet } from "../../crds/types";
import { matchesSelector, namespaceAllowed, requestedSubnet } from "../../lib/selection";
import { ownerKey, ownerStillWants, stickyOwnerOf } from "../../lib/owner";

const ns = (name: string, labels: Record<string, string> = {}) => ({ name, labels });
const subnet = (spec: Partial<NonNullable<MacvlanSubnet["spec"]>>) =>
  ({
    metadata: { name: "lan" },
    spec: { master: "eth0", cidr: "198.18.100.0/24", ...spec },
  }) as MacvlanSubnet;

test("the pod annotation wins over the namespace label; neither means not opted in", t => {
  t.is(
    requestedSubnet({ "macvlan.dev/subnet": "other" }, ns("a", { "macvlan.dev/subnet": "lan" })),
    "other",
  );
  t.is(requestedSubnet({}, ns("a", { "macvlan.dev/subnet": "lan" })), "lan");
  t.is(requestedSubnet(undefined, ns("a")), undefined);
  t.is(requestedSubnet({ "macvlan.dev/subnet": "  " }, ns("a")), undefined);
});

test("a subnet without namespaces or selector is open to every opted-in namespace", t => {
  t.true(namespaceAllowed(subnet({}), ns("anything")));
});

test("the namespaces list and the selector each grant access", t => {
  const s = subnet({ namespaces: ["team-a"], namespaceSelector: { matchLabels: { tier: "lan" } } });
  t.true(namespaceAllowed(s, ns("team-a")));
  t.true(namespaceAllowed(s, ns("team-b", { tier: "lan" })));
  t.false(namespaceAllowed(s, ns("team-c", { tier: "web" })));
  t.false(namespaceAllowed(subnet({ namespaces: ["team-a"] }), ns("team-b")));
});

test("selector expressions: In, NotIn, Exists, DoesNotExist", t => {
  const labels = { env: "prod", team: "net" };
  t.true(
    matchesSelector(labels, {
      matchExpressions: [{ key: "env", operator: "In", values: ["prod", "dev"] }],
    }),
  );
  t.false(
    matchesSelector(labels, {
      matchExpressions: [{ key: "env", operator: "NotIn", values: ["prod"] }],
    }),
  );
  t.true(matchesSelector(labels, { matchExpressions: [{ key: "team", operator: "Exists" }] }));
  t.false(
    matchesSelector(labels, { matchExpressions: [{ key: "team", operator: "DoesNotExist" }] }),
  );
  t.false(
    matchesSelector(labels, { matchExpressions: [{ key: "zone", operator: "In", values: ["a"] }] }),
  );
});

const stsPod = (name: string, owner = "db") => ({
  metadata: {
    name,
    ownerReferences: [{ kind: "StatefulSet", name: owner, uid: "sts-uid", controller: true }],
  },
});

test("a StatefulSet pod's sticky owner is the set and its ordinal", t => {
  t.deepEqual(stickyOwnerOf(stsPod("db-3"), "ns"), {
    kind: "StatefulSet",
    namespace: "ns",
    name: "db",
    uid: "sts-uid",
    ordinal: 3,
  });
  t.is(stickyOwnerOf(stsPod("db-x"), "ns"), undefined);
  t.is(stickyOwnerOf(stsPod("web-1"), "ns"), undefined);
  t.is(stickyOwnerOf({ metadata: { name: "db-1" } }, "ns"), undefined);
  t.is(ownerKey({ namespace: "ns", name: "db", ordinal: 3 }), "ns/db/3");
});

test("the StatefulSet wants an ordinal while it exists, is the same set and is scaled above it", t => {
  const owner = { kind: "StatefulSet" as const, namespace: "ns", name: "db", uid: "u", ordinal: 2 };
  t.true(ownerStillWants(owner, { metadata: { uid: "u" }, spec: { replicas: 3 } }));
  t.false(ownerStillWants(owner, { metadata: { uid: "u" }, spec: { replicas: 2 } }));
  t.false(ownerStillWants(owner, undefined));
  t.false(ownerStillWants(owner, { metadata: { uid: "other" }, spec: { replicas: 5 } }));
  t.false(
    ownerStillWants(owner, {
      metadata: { uid: "u", deletionTimestamp: "now" },
      spec: { replicas: 5 },
    }),
  );
});
