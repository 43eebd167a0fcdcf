import test from "ava";
import {
  OPTED_IN,
  scopePatch,
  scopedSelector,
  webhookConfigurationName,
} from "../../lib/webhook-scope";

// What Pepr 1.1.4 writes (src/lib/assets/webhooks.ts): only its ignored namespaces.
const peprSelector = () => ({
  matchExpressions: [
    {
      key: "kubernetes.io/metadata.name",
      operator: "NotIn" as const,
      values: ["kube-system", "pepr-system"],
    },
  ],
});

test("the scoped selector keeps Pepr's ignored namespaces and adds the opt-in label", t => {
  const scoped = scopedSelector(peprSelector());
  t.deepEqual(scoped.matchExpressions, [...peprSelector().matchExpressions, OPTED_IN]);
  t.deepEqual(OPTED_IN, { key: "macvlan.dev/subnet", operator: "Exists" });
  t.deepEqual(scopedSelector(undefined), { matchExpressions: [OPTED_IN] });
  t.is(scopedSelector(scoped), scoped, "already scoped: unchanged (same object)");
  t.deepEqual(scopedSelector({ matchLabels: { a: "b" } }), {
    matchLabels: { a: "b" },
    matchExpressions: [OPTED_IN],
  });
});

test("the patch scopes every webhook of a configuration, guarded by its resourceVersion", t => {
  const ops = scopePatch({
    metadata: { name: "pepr-pepr-macvlan", resourceVersion: "42" },
    webhooks: [
      { name: "pepr-pepr-macvlan.pepr.dev", namespaceSelector: peprSelector() },
      { name: "other.pepr.dev" },
    ],
  });
  t.deepEqual(ops, [
    { op: "test", path: "/metadata/resourceVersion", value: "42" },
    {
      op: "add",
      path: "/webhooks/0/namespaceSelector",
      value: scopedSelector(peprSelector()),
    },
    { op: "add", path: "/webhooks/1/namespaceSelector", value: { matchExpressions: [OPTED_IN] } },
  ]);
});

test("a configuration already scoped needs no patch (no write loop with the watch)", t => {
  const config = {
    metadata: { resourceVersion: "7" },
    webhooks: [{ name: "w", namespaceSelector: scopedSelector(peprSelector()) }],
  };
  t.deepEqual(scopePatch(config), []);
  t.deepEqual(scopePatch({ metadata: { resourceVersion: "1" } }), [], "no webhooks");
});

test("the configurations are the ones Pepr names after the module's uuid", t => {
  t.is(webhookConfigurationName("pepr-macvlan"), "pepr-pepr-macvlan");
});
