// What `npx pepr build` makes of package.json `pepr.rbac`. Pepr 1.1.4 merges rules whose
// apiGroups/resources are the same and keeps the first rule's fields: a rule granting a verb on
// some names only, written beside a rule on the same resources without names, becomes that verb
// on every object (caught on the cluster: patch on every webhook configuration). So no two of our
// rules may share apiGroups and resources; the real renderer shows they all survive as written.
import test from "ava";
import * as fs from "node:fs";
import * as path from "node:path";
import { clusterRole } from "pepr/src/lib/assets/rbac";

interface Rule {
  apiGroups: string[];
  resources: string[];
  resourceNames?: string[];
  verbs: string[];
}

const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, "../../package.json"), "utf8"));
const rules: Rule[] = pkg.pepr.rbac;
const peprKey = (r: Rule) => `${r.apiGroups}/${r.resources}`;

test("no two package.json rules share apiGroups and resources (Pepr would merge them)", t => {
  const seen = new Map<string, number>();
  for (const r of rules) seen.set(peprKey(r), (seen.get(peprKey(r)) ?? 0) + 1);
  t.deepEqual(
    [...seen].filter(([, n]) => n > 1).map(([k]) => k),
    [],
  );
});

test("Pepr's ClusterRole keeps every rule's resourceNames: no verb meant for some names reaches all", t => {
  const rendered = clusterRole("pepr-pepr-macvlan", [], "scoped", rules).rules as Rule[];
  for (const want of rules.filter(r => r.resourceNames?.length)) {
    const got = rendered.find(r => peprKey(r) === peprKey(want));
    t.deepEqual(got?.resourceNames, want.resourceNames, peprKey(want));
  }
  // A verb granted without names is one package.json grants without names.
  for (const r of rendered.filter(r => !r.resourceNames?.length))
    for (const res of r.resources)
      for (const verb of r.verbs)
        t.true(
          rules.some(
            w =>
              !w.resourceNames?.length &&
              w.apiGroups.includes(r.apiGroups[0]) &&
              w.resources.includes(res) &&
              w.verbs.includes(verb),
          ),
          `${verb} ${r.apiGroups[0]}/${res} on every object`,
        );
});
