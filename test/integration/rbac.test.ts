// Least privilege (issue 10, item 5), on the local cluster with real kubelets, the module installed
// as a user does (hack/module/deploy.ts: crds/, deploy/policies.yaml, `npx pepr deploy --yes`, the
// agent DaemonSet):
// - the module's ServiceAccount has Pepr's scoped ClusterRole with exactly package.json pepr.rbac
//   (no wildcard, no Secrets, no pod writes) and the module still works under it;
// - the agent's ServiceAccount reads and patches subnet status only, and the API server's
//   ValidatingAdmissionPolicy lets it change only its own node's status.nodes entry (by the node
//   name in its pod-bound token, and by impersonation with that user-info extra);
// - a tenant namespace admin (even one RBAC lets write leases by mistake) cannot create or change
//   MacvlanLeases nor edit the managed NAD; cluster cleanup (namespace deletion) still works.
import test from "ava";
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT } from "../../hack/cluster/config";
import { KubeError } from "../../hack/cluster/kube";
import { NAMESPACE, deploy } from "../../hack/module/deploy";
import {
  AGENT_SERVICE_ACCOUNT,
  AGENT_USER,
  MODULE_USER,
  POLICY_NAMES,
  STORE_RBAC_NAME,
} from "../../hack/module/policies";
import { Cluster, Pod, macvlanSubnet, testPod, waitFor, withCluster, getJson } from "./helpers";
import { impersonated, tokenClient, whoAmI } from "./helpers/identity";

const cluster = withCluster(test, { nodes: 2 });

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const SUBNET = "lan";
const TENANT_NS = "rbac-team";
const TENANT = "tenant-alice";
const NODE_NAME_EXTRA = "authentication.kubernetes.io/node-name";
const SUBNET_STATUS = `/apis/macvlan.dev/v1alpha1/macvlansubnets/${SUBNET}/status`;
const NAD = "macvlan-lan";

/** `kubectl auth can-i` as `user`; "yes" → true, "no" → false. */
async function canI(c: Cluster, user: string, args: string[]): Promise<boolean> {
  const r = await c.kubectlResult(["auth", "can-i", ...args, `--as=${user}`]);
  const answer = r.stdout.trim().split("\n")[0];
  if (answer !== "yes" && answer !== "no")
    throw new Error(`kubectl auth can-i ${args.join(" ")}: ${r.stdout}${r.stderr}`);
  return answer === "yes";
}

let podIP = "";

test.serial.before(async t => {
  const c = cluster();
  const d = await deploy({ agent: true });
  t.log(
    `module Ready in ${d.moduleSeconds.toFixed(0)} s, agents in ${d.agentSeconds?.toFixed(0)} s`,
  );
  await c.apply(
    macvlanSubnet(SUBNET, { ranges: [{ start: "198.18.100.10", end: "198.18.100.99" }] }),
  );
  await c.createNamespace(TENANT_NS, { "macvlan.dev/subnet": SUBNET });
});

test.serial("the policies type-check against the CRDs (no expression warnings)", async t => {
  const c = cluster();
  for (const name of POLICY_NAMES) {
    const p = await waitFor(
      async () => {
        const p = await getJson(c, ["validatingadmissionpolicy", name]);
        return p?.status?.observedGeneration === p?.metadata?.generation && p;
      },
      { what: `type checking of ${name}`, timeoutMs: 60000 },
    );
    t.deepEqual(p.status.typeChecking?.expressionWarnings ?? [], [], name);
    t.truthy(await getJson(c, ["validatingadmissionpolicybinding", name]), `binding ${name}`);
  }
});

test.serial(
  "the module's ClusterRole is exactly package.json pepr.rbac: no wildcard, no Secrets",
  async t => {
    const c = cluster();
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "package.json"), "utf8"));
    t.is(pkg.pepr.rbacMode, "scoped");
    const role = await getJson(c, ["clusterrole", "pepr-pepr-macvlan"]);
    // A kind may have two rules (read all, patch only some names): resourceNames are part of the key.
    const key = (r: Json) =>
      [
        r.apiGroups.join(","),
        r.resources.join(","),
        ...(r.resourceNames?.length ? [[...r.resourceNames].sort().join(",")] : []),
      ].join("/");
    const norm = (r: Json) => ({
      key: key(r),
      verbs: [...r.verbs].sort(),
      names: [...(r.resourceNames ?? [])].sort(),
    });
    const rendered = new Map<string, Json>(role.rules.map((r: Json) => [key(r), norm(r)]));
    // Pepr adds "watch" for watched kinds and "create" for its store CRD; everything else is ours.
    const added: Record<string, string[]> = {
      "apiextensions.k8s.io/customresourcedefinitions/peprstores.pepr.dev": ["create"],
    };
    t.deepEqual(
      [...rendered.keys()].sort(),
      pkg.pepr.rbac.map(key).sort(),
      "one rendered rule per package.json rule",
    );
    for (const want of pkg.pepr.rbac.map(norm)) {
      const got = rendered.get(want.key);
      t.deepEqual(
        got?.verbs,
        [...new Set([...want.verbs, ...(added[want.key] ?? [])])].sort(),
        want.key,
      );
      t.deepEqual(got?.names, want.names, `${want.key} resourceNames`);
    }
    for (const r of role.rules) {
      for (const field of ["apiGroups", "resources", "verbs"])
        t.false(r[field].includes("*"), `no wildcard in ${key(r)} ${field}`);
      t.false(r.resources.includes("secrets"));
    }
    // The store Role Pepr binds to a ServiceAccount that does not exist is gone.
    t.falsy(await getJson(c, ["-n", NAMESPACE, "rolebinding", STORE_RBAC_NAME]));
    t.falsy(await getJson(c, ["-n", NAMESPACE, "role", STORE_RBAC_NAME]));
    t.truthy(await getJson(c, ["-n", NAMESPACE, "serviceaccount", "pepr-pepr-macvlan"]));

    const no = [
      ["get", "secrets", "-n", NAMESPACE],
      ["list", "secrets", "-A"],
      ["get", "secrets", "-n", "default"],
      ["create", "pods", "-n", TENANT_NS],
      ["patch", "pods", "-n", TENANT_NS],
      ["create", "pods", "--subresource=exec", "-n", TENANT_NS],
      ["*", "*", "-A"],
      ["create", "clusterrolebindings"],
      ["create", "serviceaccounts", "--subresource=token", "-n", NAMESPACE],
      ["impersonate", "users"],
      ["update", "nodes"],
      ["delete", "namespaces"],
      ["patch", "customresourcedefinitions/macvlanleases.macvlan.dev"],
      ["get", "peprstores.pepr.dev/someone-elses-store", "-n", NAMESPACE],
      ["create", "deployments.apps", "-n", NAMESPACE],
    ];
    const yes = [
      ["create", "macvlanleases.macvlan.dev"],
      ["patch", "macvlanleases.macvlan.dev", "--subresource=status"],
      ["delete", "macvlanleases.macvlan.dev"],
      ["watch", "macvlanleases.macvlan.dev"],
      ["patch", "macvlansubnets.macvlan.dev", "--subresource=status"],
      ["list", "pods", "-A"],
      ["watch", "namespaces"],
      ["create", "network-attachment-definitions.k8s.cni.cncf.io", "-n", TENANT_NS],
      ["create", "endpointslices.discovery.k8s.io", "-n", TENANT_NS],
      ["create", "events", "-n", "default"],
      ["get", "statefulsets.apps", "-n", TENANT_NS],
      ["get", "peprstores.pepr.dev/pepr-pepr-macvlan-store", "-n", NAMESPACE],
      ["patch", "customresourcedefinitions/peprstores.pepr.dev"],
    ];
    for (const args of no)
      t.false(await canI(c, MODULE_USER, args), `module cannot ${args.join(" ")}`);
    for (const args of yes)
      t.true(await canI(c, MODULE_USER, args), `module can ${args.join(" ")}`);
  },
);

test.serial(
  "under that RBAC and the policies: subnet Ready, a pod leased and Bound, NAD and exposed Service rendered, both agents report",
  async t => {
    const c = cluster();
    await waitFor(
      async () => (await getJson(c, ["mvs", SUBNET]))?.status?.conditions?.[0]?.status === "True",
      { what: "subnet Ready", timeoutMs: 90000 },
    );
    t.truthy(
      await waitFor(() => getJson(c, ["-n", TENANT_NS, "network-attachment-definitions", NAD]), {
        what: "managed NAD",
        timeoutMs: 60000,
      }),
    );
    await c.apply(
      testPod({ name: "web", namespace: TENANT_NS, node: "pmv-node-1", labels: { app: "web" } }),
    );
    const pod = await c.waitForPodReady(TENANT_NS, "web", { timeoutMs: 90000 });
    podIP = pod.metadata.annotations!["macvlan.dev/ip"];
    t.regex(podIP, /^198\.18\.100\.\d+$/);
    const lease = await waitFor(
      async () => {
        const l = await getJson(c, ["mvl", `${SUBNET}-${podIP.replace(/\./g, "-")}`]);
        return l?.status?.phase === "Bound" && l;
      },
      { what: "lease Bound", timeoutMs: 60000 },
    );
    t.is(lease.spec.podRef.uid, pod.metadata.uid);
    // Services and EndpointSlices are written under the scoped role too.
    await c.apply({
      apiVersion: "v1",
      kind: "Service",
      metadata: {
        name: "web",
        namespace: TENANT_NS,
        annotations: { "macvlan.dev/expose": "true" },
      },
      spec: { selector: { app: "web" }, ports: [{ port: 80 }] },
    });
    const slice = await waitFor(
      async () => {
        const l = await getJson(c, [
          "-n",
          TENANT_NS,
          "endpointslices",
          "-l",
          "kubernetes.io/service-name=web-macvlan",
        ]);
        return l?.items?.[0]?.endpoints?.length && l.items[0];
      },
      { what: "EndpointSlice of web-macvlan", timeoutMs: 60000 },
    );
    t.deepEqual(slice.endpoints[0].addresses, [podIP]);
    // Each agent wrote its own status.nodes entry with its real pod-bound token, through the policy.
    const subnet = await waitFor(
      async () => {
        const s = await getJson(c, ["mvs", SUBNET]);
        const nodes = (s?.status?.nodes ?? []).map((n: Json) => n.node).sort();
        return nodes.join(",") === "pmv-node-1,pmv-node-2" && s;
      },
      { what: "status.nodes entries of both agents", timeoutMs: 90000 },
    );
    t.log(`status.nodes: ${JSON.stringify(subnet.status.nodes)}`);
  },
);

test.serial(
  "the agent's ServiceAccount: read subnets, leases, pods, nodes; patch subnet status; nothing else",
  async t => {
    const c = cluster();
    const yes = [
      ["list", "pods", "-A"],
      ["watch", "pods", "-A"],
      ["watch", "macvlansubnets.macvlan.dev"],
      ["patch", "macvlansubnets.macvlan.dev", "--subresource=status"],
      ["list", "macvlanleases.macvlan.dev"],
      ["get", "nodes"],
      ["create", "events", "-n", "default"],
    ];
    const no = [
      ["patch", "macvlansubnets.macvlan.dev"],
      ["delete", "macvlansubnets.macvlan.dev"],
      ["create", "macvlanleases.macvlan.dev"],
      ["patch", "macvlanleases.macvlan.dev"],
      ["patch", "macvlanleases.macvlan.dev", "--subresource=status"],
      ["get", "secrets", "-n", NAMESPACE],
      ["create", "pods", "-n", TENANT_NS],
      ["patch", "nodes"],
      ["create", "events", "-n", "kube-system"],
      ["patch", "events", "-n", "default"],
      ["*", "*", "-A"],
    ];
    for (const args of yes) t.true(await canI(c, AGENT_USER, args), `agent can ${args.join(" ")}`);
    for (const args of no)
      t.false(await canI(c, AGENT_USER, args), `agent cannot ${args.join(" ")}`);
  },
);

/** A JSON patch on the subnet's status; resolves with the HTTP status and message. */
async function patchStatus(
  send: (ops: Json[]) => Promise<void>,
  ops: Json[],
): Promise<{ status: number; message: string }> {
  try {
    await send(ops);
    return { status: 200, message: "" };
  } catch (e) {
    if (e instanceof KubeError) return { status: e.status, message: e.message };
    throw e;
  }
}

const entryIndex = (s: Json, node: string) =>
  (s.status.nodes as Json[]).findIndex(n => n.node === node);

test.serial(
  "an agent may change only its own node's status.nodes entry (pod-bound token)",
  async t => {
    const c = cluster();
    const agents = (await c.listPods(
      NAMESPACE,
      `app.kubernetes.io/name=${AGENT_SERVICE_ACCOUNT}`,
    )) as Pod[];
    const onNode1 = agents.find(p => p.spec.nodeName === "pmv-node-1")!;
    // The token the kubelet would project: bound to the agent pod, so it names the pod's node.
    const token = (
      await c.kubectl([
        "-n",
        NAMESPACE,
        "create",
        "token",
        AGENT_SERVICE_ACCOUNT,
        "--bound-object-kind=Pod",
        `--bound-object-name=${onNode1.metadata.name}`,
        `--bound-object-uid=${onNode1.metadata.uid}`,
        "--duration=10m",
      ])
    ).trim();
    const agent = tokenClient(token);
    const unbound = tokenClient(
      (
        await c.kubectl([
          "-n",
          NAMESPACE,
          "create",
          "token",
          AGENT_SERVICE_ACCOUNT,
          "--duration=10m",
        ])
      ).trim(),
    );
    try {
      const me = await whoAmI(agent);
      t.is(me.username, AGENT_USER);
      t.deepEqual(me.extra?.[NODE_NAME_EXTRA], ["pmv-node-1"]);
      t.is((await whoAmI(unbound)).extra?.[NODE_NAME_EXTRA], undefined);

      const send = (client: typeof agent) => (ops: Json[]) =>
        client.patch(SUBNET_STATUS, ops, "json").then(() => undefined);
      const s = (await getJson(c, ["mvs", SUBNET]))!;
      const mine = entryIndex(s, "pmv-node-1");
      const other = entryIndex(s, "pmv-node-2");
      t.true(mine >= 0 && other >= 0);

      // Another node's entry: denied by the policy (RBAC allows the patch).
      const theirs = await patchStatus(send(agent), [
        { op: "test", path: `/status/nodes/${other}/node`, value: "pmv-node-2" },
        { op: "replace", path: `/status/nodes/${other}/ready`, value: false },
      ]);
      t.is(theirs.status, 403, theirs.message);
      t.regex(theirs.message, /pepr-macvlan-agent-own-node/);
      t.regex(theirs.message, /may change only its own entry of status\.nodes/);
      // An entry for a node that is not its own, appended: denied.
      const invented = await patchStatus(send(agent), [
        { op: "add", path: "/status/nodes/-", value: { node: "pmv-node-9", ready: true } },
      ]);
      t.is(invented.status, 403, invented.message);
      // Other status fields: denied.
      const allocated = await patchStatus(send(agent), [
        { op: "replace", path: "/status/allocated", value: 4242 },
      ]);
      t.is(allocated.status, 403, allocated.message);
      t.regex(allocated.message, /may change only status\.nodes/);
      // Its own entry: allowed.
      const own = await patchStatus(send(agent), [
        { op: "test", path: `/status/nodes/${mine}/node`, value: "pmv-node-1" },
        { op: "replace", path: `/status/nodes/${mine}/message`, value: "written by the rbac test" },
      ]);
      t.is(own.status, 200, own.message);
      // A token that names no node (not pod-bound): may not touch status.nodes at all.
      const anon = await patchStatus(send(unbound), [
        { op: "test", path: `/status/nodes/${mine}/node`, value: "pmv-node-1" },
        { op: "replace", path: `/status/nodes/${mine}/message`, value: "no node name" },
      ]);
      t.is(anon.status, 403, anon.message);
      t.regex(anon.message, /carries no node name/);
      const after = (await getJson(c, ["mvs", SUBNET]))!;
      t.not(after.status.allocated, 4242);
      t.false(after.status.nodes.some((n: Json) => n.node === "pmv-node-9"));
    } finally {
      agent.close();
      unbound.close();
    }
  },
);

test.serial("the same policy by impersonation with the node-name user-info extra", async t => {
  const c = cluster();
  const s = (await getJson(c, ["mvs", SUBNET]))!;
  const patch = (node: string, target: string) =>
    impersonated(
      { user: AGENT_USER, extra: { [NODE_NAME_EXTRA]: [node] } },
      "PATCH",
      SUBNET_STATUS,
      [
        { op: "test", path: `/status/nodes/${entryIndex(s, target)}/node`, value: target },
        {
          op: "replace",
          path: `/status/nodes/${entryIndex(s, target)}/message`,
          value: `impersonated ${node}`,
        },
      ],
      "application/json-patch+json",
    );
  const own = await patch("pmv-node-2", "pmv-node-2");
  t.is(own.status, 200, JSON.stringify(own.body));
  const other = await patch("pmv-node-2", "pmv-node-1");
  t.is(other.status, 403, JSON.stringify(other.body));
  t.regex(other.body.message, /the node agent of pmv-node-2 may change only its own entry/);
  // Without the extra (what kubectl --as gives): no node name, denied.
  const none = await impersonated(
    { user: AGENT_USER },
    "PATCH",
    SUBNET_STATUS,
    [{ op: "replace", path: `/status/nodes/${entryIndex(s, "pmv-node-2")}/message`, value: "x" }],
    "application/json-patch+json",
  );
  t.is(none.status, 403, JSON.stringify(none.body));
  t.regex(none.body.message, /carries no node name/);
});

test.serial(
  "a tenant namespace admin cannot create or change MacvlanLeases nor edit the managed NAD",
  async t => {
    const c = cluster();
    const leaseName = `${SUBNET}-${podIP.replace(/\./g, "-")}`;
    await c.apply([
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        metadata: { name: "alice-admin", namespace: TENANT_NS },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "admin" },
        subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: TENANT }],
      },
      // Tenants commonly manage their own NADs.
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "Role",
        metadata: { name: "nads", namespace: TENANT_NS },
        rules: [
          {
            apiGroups: ["k8s.cni.cncf.io"],
            resources: ["network-attachment-definitions"],
            verbs: ["get", "list", "watch", "create", "update", "patch", "delete"],
          },
        ],
      },
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        metadata: { name: "alice-nads", namespace: TENANT_NS },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "nads" },
        subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: TENANT }],
      },
    ]);
    await waitFor(
      () =>
        canI(c, TENANT, [
          "patch",
          "network-attachment-definitions.k8s.cni.cncf.io",
          "-n",
          TENANT_NS,
        ]),
      {
        what: "tenant RBAC in effect",
      },
    );
    // RBAC alone already says no to leases (cluster-scoped, not in any namespace role).
    t.false(await canI(c, TENANT, ["create", "macvlanleases.macvlan.dev"]));
    t.false(await canI(c, TENANT, ["patch", "macvlanleases.macvlan.dev"]));

    const asTenant = (args: string[], input?: string) =>
      c.kubectlResult([...args, `--as=${TENANT}`], { input });
    const managedNad = await getJson(c, ["-n", TENANT_NS, "network-attachment-definitions", NAD]);
    const hostLocal = JSON.stringify({
      cniVersion: "0.3.1",
      name: NAD,
      type: "macvlan",
      master: "eth0",
      ipam: { type: "host-local", subnet: "198.18.0.0/16" },
    });
    const denied = /is managed by pepr-macvlan/;
    // Repoint the managed NAD at host-local IPAM: denied by the policy (RBAC allows it).
    let r = await asTenant([
      "-n",
      TENANT_NS,
      "patch",
      "network-attachment-definitions",
      NAD,
      "--type=merge",
      "-p",
      JSON.stringify({ spec: { config: hostLocal } }),
    ]);
    t.not(r.code, 0);
    t.regex(r.stderr, denied);
    // Drop the managed-by label (to edit it afterwards): denied, the old object has it.
    r = await asTenant([
      "-n",
      TENANT_NS,
      "label",
      "network-attachment-definitions",
      NAD,
      "app.kubernetes.io/managed-by-",
    ]);
    t.not(r.code, 0);
    t.regex(r.stderr, denied);
    r = await asTenant(["-n", TENANT_NS, "delete", "network-attachment-definitions", NAD]);
    t.not(r.code, 0);
    t.regex(r.stderr, denied);
    const still = await getJson(c, ["-n", TENANT_NS, "network-attachment-definitions", NAD]);
    t.is(still.spec.config, managedNad.spec.config);
    t.is(still.metadata.labels["app.kubernetes.io/managed-by"], "pepr-macvlan");
    // Her own NAD is hers; labelling it as managed is not.
    const own = {
      apiVersion: "k8s.cni.cncf.io/v1",
      kind: "NetworkAttachmentDefinition",
      metadata: { name: "alice-own", namespace: TENANT_NS },
      spec: { config: hostLocal.replace(NAD, "alice-own") },
    };
    r = await asTenant(["apply", "-f", "-"], JSON.stringify(own));
    t.is(r.code, 0, r.stderr);
    r = await asTenant([
      "-n",
      TENANT_NS,
      "label",
      "network-attachment-definitions",
      "alice-own",
      "app.kubernetes.io/managed-by=pepr-macvlan",
    ]);
    t.not(r.code, 0);
    t.regex(r.stderr, denied);
    r = await asTenant(
      ["apply", "-f", "-"],
      JSON.stringify({
        ...own,
        metadata: {
          ...own.metadata,
          name: "fake-managed",
          labels: { "app.kubernetes.io/managed-by": "pepr-macvlan" },
        },
      }),
    );
    t.not(r.code, 0);
    t.regex(r.stderr, denied);

    // Even if RBAC lets her write leases by mistake, the API server's policy does not.
    await c.apply([
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRole",
        metadata: { name: "rbac-test-lease-writer" },
        rules: [
          {
            apiGroups: ["macvlan.dev"],
            resources: ["macvlanleases", "macvlanleases/status"],
            verbs: ["get", "list", "create", "update", "patch", "delete"],
          },
        ],
      },
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRoleBinding",
        metadata: { name: "rbac-test-lease-writer" },
        roleRef: {
          apiGroup: "rbac.authorization.k8s.io",
          kind: "ClusterRole",
          name: "rbac-test-lease-writer",
        },
        subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: TENANT }],
      },
    ]);
    await waitFor(() => canI(c, TENANT, ["create", "macvlanleases.macvlan.dev"]), {
      what: "the mistaken lease RBAC in effect",
    });
    const leaseDenied = /MacvlanLeases are written only by the pepr-macvlan module/;
    r = await asTenant(
      ["create", "-f", "-"],
      JSON.stringify({
        apiVersion: "macvlan.dev/v1alpha1",
        kind: "MacvlanLease",
        metadata: { name: "lan-198-18-100-98", labels: { "macvlan.dev/subnet": SUBNET } },
        spec: { subnet: SUBNET, ip: "198.18.100.98", mac: "02:00:00:00:00:98" },
      }),
    );
    t.not(r.code, 0);
    t.regex(r.stderr, leaseDenied);
    // The name may exist anyway: an admission replica may have pre-leased that address into its
    // pool (random scan start). What must not exist is the tenant's lease.
    const sameName = await getJson(c, ["mvl", "lan-198-18-100-98"]);
    t.not(sameName?.spec?.mac, "02:00:00:00:00:98", "the tenant's lease was created");
    r = await asTenant([
      "patch",
      "mvl",
      leaseName,
      "--type=merge",
      "-p",
      JSON.stringify({ spec: { node: "pmv-node-2" } }),
    ]);
    t.not(r.code, 0);
    t.regex(r.stderr, leaseDenied);
    r = await asTenant([
      "patch",
      "mvl",
      leaseName,
      "--subresource=status",
      "--type=merge",
      "-p",
      JSON.stringify({ status: { phase: "Released" } }),
    ]);
    t.not(r.code, 0);
    t.regex(r.stderr, leaseDenied);
    r = await asTenant(["delete", "mvl", leaseName]);
    t.not(r.code, 0);
    t.regex(r.stderr, leaseDenied);
    const lease = await getJson(c, ["mvl", leaseName]);
    t.is(lease.status.phase, "Bound");
    t.is(lease.spec.node, "pmv-node-1");
    // The agent's ServiceAccount is no module either (here RBAC already refuses, before the policy).
    const agentTry = await impersonated(
      {
        user: AGENT_USER,
        groups: ["system:serviceaccounts", "system:authenticated"],
        extra: { [NODE_NAME_EXTRA]: ["pmv-node-1"] },
      },
      "DELETE",
      `/apis/macvlan.dev/v1alpha1/macvlanleases/${leaseName}?dryRun=All`,
    );
    t.is(agentTry.status, 403);
    // Break-glass: system:masters (the admin) may still repair a lease.
    await c.kubectl(["annotate", "mvl", leaseName, "rbac-test/break-glass=ok"]);
    await c.kubectl(["annotate", "mvl", leaseName, "rbac-test/break-glass-"]);
    await c.kubectl(["delete", "clusterrolebinding,clusterrole", "rbac-test-lease-writer"]);
  },
);

test.serial("namespace deletion still removes the managed NAD (namespace controller)", async t => {
  const c = cluster();
  const ns = "rbac-gone";
  await c.createNamespace(ns, { "macvlan.dev/subnet": SUBNET });
  await waitFor(() => getJson(c, ["-n", ns, "network-attachment-definitions", NAD]), {
    what: `managed NAD in ${ns}`,
    timeoutMs: 60000,
  });
  await c.deleteNamespace(ns, true, 90000);
  t.falsy(await getJson(c, ["namespace", ns]));
});
