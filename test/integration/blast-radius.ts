// The module's blast radius and availability (issue 15), on the local cluster with the module
// installed as a user installs it. Registered by tenancy.test.ts after its own tests, on its
// cluster (module without the agent): one cluster less to start in CI.
// - its webhooks are scoped to namespaces that opted in (lib/webhook-scope.ts), so pods elsewhere
//   never wait for it, and the API server's own policies (deploy/policies.yaml 4 and 5) refuse
//   there what the webhook used to: macvlan.dev/* annotations and managed NAD names;
// - with the admission Deployment scaled to 0, pods outside start, the policies still hold, and
//   an opted-in namespace fails closed;
// - the reproducer of the reported outages: subnet and pod creates keep going while namespaces
//   with macvlan pods are deleted, a burst runs and the admission replicas roll, and not one
//   webhook call fails.
import type { ExecutionContext, TestFn } from "ava";
import { scaleAdmission } from "../../hack/module/deploy";
import { OPTED_IN } from "../../lib/webhook-scope";
import {
  Cluster,
  getJson,
  macvlanSubnet,
  podReady,
  testDeployment,
  testPod,
  waitFor,
} from "./helpers";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const IN = "br-in";
const OUT = "br-out";
/** The subnet of IN (its own range: the reproducer creates a few hundred pods there). */
const CHURN = "churn";

const create = (c: Cluster, obj: object, ...flags: string[]) =>
  c.kubectlResult(["create", ...flags, "-f", "-"], { input: JSON.stringify(obj) });

/** Registers the tests on `test` (serial, in this order), for a cluster that has subnet "lan". */
export function blastRadiusTests(test: TestFn, cluster: () => Cluster): void {
  test.serial(
    "blast radius setup: an opted-in namespace with its own subnet, one that did not opt in",
    async t => {
      const c = cluster();
      await c.apply(
        macvlanSubnet(CHURN, { ranges: [{ start: "198.18.102.10", end: "198.18.102.250" }] }),
      );
      await c.createNamespace(IN, { "macvlan.dev/subnet": CHURN });
      await c.createNamespace(OUT);
      await waitFor(
        async () => (await getJson(c, ["mvs", CHURN]))?.status?.conditions?.[0]?.status === "True",
        { what: `subnet ${CHURN} Ready`, timeoutMs: 60_000 },
      );
      t.pass();
    },
  );

  test.serial("the module's webhooks are scoped to namespaces that opted in", async t => {
    const c = cluster();
    for (const kind of ["mutatingwebhookconfiguration", "validatingwebhookconfiguration"]) {
      // `npx pepr deploy` writes them unscoped and the watcher scopes them; the built manifest
      // is scoped already (fix-dist).
      const config = await waitFor(
        async () => {
          const w = await getJson(c, [kind, "pepr-pepr-macvlan"]);
          const scoped = (w?.webhooks ?? []).every((h: Json) =>
            (h.namespaceSelector?.matchExpressions ?? []).some(
              (r: Json) => r.key === OPTED_IN.key && r.operator === OPTED_IN.operator,
            ),
          );
          return w?.webhooks?.length && scoped && w;
        },
        { what: `${kind} scoped`, timeoutMs: 60_000 },
      );
      // Pepr's own requirement (its ignored namespaces) is kept beside ours.
      t.true(
        config.webhooks[0].namespaceSelector.matchExpressions.some(
          (r: Json) => r.key === "kubernetes.io/metadata.name" && r.operator === "NotIn",
        ),
        kind,
      );
    }
  });

  test.serial(
    "outside opted-in namespaces the API server refuses macvlan annotations and managed NADs",
    async t => assertOutsideRefusals(t, cluster()),
  );

  test.serial(
    "with admission scaled to 0: pods outside start, the policies hold, opted-in namespaces fail closed",
    async t => moduleDown(t, cluster()),
  );

  test.serial(
    "reproducer: creates keep succeeding while namespaces with macvlan pods are deleted during a burst",
    async t => reproducer(t, cluster()),
  );
}

/** Both refusals the API server makes outside opted-in namespaces. */
async function assertOutsideRefusals(t: ExecutionContext, c: Cluster) {
  const asks = await create(
    c,
    testPod({ name: "asks", namespace: OUT, annotations: { "macvlan.dev/subnet": "lan" } }),
    "--dry-run=server",
  );
  t.not(asks.code, 0, "a pod asking for a subnet where the namespace did not opt in");
  t.regex(asks.stderr, /has not opted in/);
  t.regex(asks.stderr, /kubectl label namespace br-out macvlan\.dev\/subnet=/);
  const spellings: Record<string, string>[] = [
    { "k8s.v1.cni.cncf.io/networks": `${IN}/macvlan-lan` },
    { "k8s.v1.cni.cncf.io/networks": `[{"name":"macvlan-lan","namespace":"${IN}"}]` },
    { "k8s.v1.cni.cncf.io/networks": `[{"name":"macvlan\\u002dlan","namespace":"${IN}"}]` },
    { "v1.multus-cni.io/default-network": `${IN}/macvlan-lan@net1` },
  ];
  for (const annotations of spellings) {
    const r = await create(
      c,
      testPod({ name: "bypass", namespace: OUT, annotations }),
      "--dry-run=server",
    );
    t.not(r.code, 0, JSON.stringify(annotations));
    t.regex(r.stderr, /managed network macvlan-lan|\\u escapes/, JSON.stringify(annotations));
  }
  // A NAD of the namespace's own, with a name that merely starts like ours, is fine.
  const own = await create(
    c,
    testPod({
      name: "own",
      namespace: OUT,
      annotations: { "k8s.v1.cni.cncf.io/networks": "macvlan-lan-storage" },
    }),
    "--dry-run=server",
  );
  t.is(own.code, 0, own.stderr);
}

async function moduleDown(t: ExecutionContext, c: Cluster) {
  await scaleAdmission(0);
  try {
    const plain = await create(c, testPod({ name: "plain", namespace: OUT }));
    t.is(plain.code, 0, `a pod outside needs no module: ${plain.stderr}`);
    t.true(podReady(await c.waitForPodReady(OUT, "plain", { timeoutMs: 90_000 })));
    await assertOutsideRefusals(t, c);
    const inside = await create(c, testPod({ name: "inside", namespace: IN }));
    t.not(inside.code, 0, "an opted-in pod without the module must not start without a lease");
    t.regex(inside.stderr, /failed calling webhook "pepr-pepr-macvlan\.pepr\.dev"/);
    t.log(`opted-in namespace, module down: ${inside.stderr.trim()}`);
  } finally {
    await scaleAdmission(2);
  }
  await c.apply(testPod({ name: "inside", namespace: IN }));
  const pod = await c.waitForPodReady(IN, "inside", { timeoutMs: 90_000 });
  t.regex(pod.metadata?.annotations?.["macvlan.dev/ip"] ?? "", /^198\.18\.102\./);
}

/** A failure the API server reports for a webhook call (not an admission decision). */
const WEBHOOK_FAILURE =
  /failed calling webhook|failed to call webhook|broken pipe|connection reset|context deadline exceeded|timeout/i;

/** Creates objects one after another until `until`, through the API (no kubectl process per call). */
async function createLoop(
  c: Cluster,
  until: number,
  make: (i: number) => { path: string; body: object; cleanup?: string },
  record: (what: string, error?: unknown) => void,
): Promise<void> {
  for (let i = 0; Date.now() < until; i++) {
    const { path, body, cleanup } = make(i);
    try {
      await c.api.create(path, body);
      record(path);
    } catch (e) {
      record(path, e);
    }
    if (cleanup) await c.api.delete(cleanup).catch(() => undefined);
  }
}

async function reproducer(t: ExecutionContext, c: Cluster) {
  const failures: string[] = [];
  const refused = new Map<string, number>();
  let calls = 0;
  const record = (what: string, error?: unknown) => {
    calls++;
    if (!error) return;
    const message = error instanceof Error ? error.message : String(error);
    if (WEBHOOK_FAILURE.test(message)) failures.push(`${what}: ${message}`);
    else refused.set(message.slice(0, 120), (refused.get(message.slice(0, 120)) ?? 0) + 1);
  };
  const subnets = "/apis/macvlan.dev/v1alpha1/macvlansubnets";
  for (let round = 0; round < 3; round++) {
    const ns = `br-churn-${round}`;
    await c.createNamespace(ns, { "macvlan.dev/subnet": CHURN });
    await c.apply(testDeployment({ name: "burst", namespace: ns, replicas: 20 }));
    await waitFor(async () => (await c.listPods(ns, "app=burst")).filter(podReady).length === 20, {
      what: `20 pods Running in ${ns}`,
      timeoutMs: 180_000,
    });
    // Delete the namespace (its 20 leases are released) while creates keep coming; in the
    // second round the admission replicas are also replaced one by one (a rollout: each old
    // replica drains its connections before it stops).
    const deletion = c.deleteNamespace(ns, true, 180_000);
    if (round === 1)
      await c.kubectl(["-n", "pepr-system", "rollout", "restart", "deploy/pepr-pepr-macvlan"]);
    const until = Date.now() + 25_000;
    await Promise.all([
      createLoop(
        c,
        until,
        i => {
          const name = `churn-${round}-${i}`;
          const spec = { cidr: `198.18.${160 + (i % 60)}.0/24`, master: `churn${i % 10}` };
          return {
            path: subnets,
            body: { ...macvlanSubnet(name, spec), spec: { ...spec } },
            cleanup: `${subnets}/${name}`,
          };
        },
        record,
      ),
      createLoop(
        c,
        until,
        i => ({
          path: `/api/v1/namespaces/${IN}/pods`,
          body: testPod({ name: `p-${round}-${i}`, namespace: IN }),
        }),
        record,
      ),
    ]);
    await deletion;
    if (round === 1)
      await c.kubectl(["-n", "pepr-system", "rollout", "status", "deploy/pepr-pepr-macvlan"]);
    await c.kubectlResult(["-n", IN, "delete", "pods", "--all", "--wait=false"]);
  }
  t.log(
    `${calls} creates during 3 namespace deletions of 20 macvlan pods each (one with a rollout)`,
  );
  for (const [m, n] of refused) t.log(`refused ×${n} (an admission decision, not a failure): ${m}`);
  t.deepEqual(failures, [], "no webhook call failed");
  t.true(calls > 100, "the loop ran");
}
