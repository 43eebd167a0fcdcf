import test from "ava";
import { parseAllDocuments } from "yaml";
import { manifestWithEnv, sourcesHash } from "../../hack/module/manifest";

const MANIFEST = `apiVersion: v1
kind: Namespace
metadata:
  name: pepr-system
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: pepr-pepr-macvlan
spec:
  template:
    spec:
      containers:
        - name: server
          env:
            - name: PEPR_WATCH_MODE
              value: "false"
            - name: MACVLAN_RESYNC_SECONDS
              value: "60"
`;

test("settings go into every Deployment's containers, replacing a value already there", t => {
  const docs = parseAllDocuments(
    manifestWithEnv(MANIFEST, { MACVLAN_RESYNC_SECONDS: "5", X: "1" }),
  ).map(d => d.toJS());
  t.is(docs[0].kind, "Namespace", "other documents stay");
  t.deepEqual(docs[1].spec.template.spec.containers[0].env, [
    { name: "PEPR_WATCH_MODE", value: "false" },
    { name: "MACVLAN_RESYNC_SECONDS", value: "5" },
    { name: "X", value: "1" },
  ]);
  t.is(manifestWithEnv(MANIFEST, {}), MANIFEST, "no settings: the manifest as built");
});

test("the build is keyed by the module's sources", t => {
  t.regex(sourcesHash(), /^[0-9a-f]{64}$/);
  t.is(sourcesHash(), sourcesHash(), "stable");
});
