// The plugin's pure commands over a fixture snapshot (test/unit/helpers/cli-cluster.ts).
import test from "ava";
import { summarizeSubnets } from "../../cli/subnets";
import { listLeases, whoHas, whoHasText } from "../../cli/leases";
import { nextFree } from "../../cli/free";
import { explainPod, explanationText } from "../../cli/why";
import { doctor, doctorText } from "../../cli/doctor";
import { planRelease } from "../../cli/release";
import { renderTable, usageBar } from "../../cli/format";
import { subnetColumns } from "../../cli/subnets";
import { NOW, doctorInput, lan, leases, snapshot } from "./helpers/cli-cluster";

const why = (target: string) => {
  const [namespace, name] = target.split("/");
  return explainPod({ ...snapshot(), namespace, name });
};

test("subnets: counts from the allocator, phases, the pool lease, per-node readiness", t => {
  const [s] = summarizeSubnets(snapshot());
  t.is(s.total, "11");
  t.is(s.allocated, 3); // .10 and .14 Bound, .11 a pool lease (no status counts as Reserved)
  t.is(s.free, "8");
  t.deepEqual(s.phases, { Reserved: 1, Bound: 2, Released: 2, Conflict: 0 });
  t.is(s.pooled, 1);
  t.deepEqual(s.conflicts, []);
  t.deepEqual(
    s.nodes.map(n => [n.node, n.ready]),
    [
      ["node-1", true],
      ["node-2", false],
    ],
  );
  const table = renderTable([s], subnetColumns, false);
  t.regex(table, /^NAME\s+CIDR\s+PARENT\s+USAGE\s+FREE\s+CONFLICTS\s+NODES$/m);
  t.regex(
    table,
    /lan\s+198\.18\.100\.0\/24\s+eth0\s+\[###\.+\]\s+27% 3\/11\s+8\s+0\s+1\/2 ready \(not: node-2\)/,
  );
});

test("subnets: a VLAN parent, and conflicts the name lock cannot prevent (MAC, misnamed, outside)", t => {
  const vlan = { ...lan, spec: { ...lan.spec!, vlan: 20 } };
  const twin = { ...leases[4], metadata: { ...leases[4].metadata, name: "lan-forged" } };
  const sameMac = {
    ...twin,
    spec: { ...twin.spec!, mac: leases[0].spec!.mac, ip: "198.18.100.30" },
  };
  const [s] = summarizeSubnets({ subnets: [vlan], leases: [...leases, sameMac], now: NOW });
  t.is(s.parent, "eth0.20");
  t.deepEqual(s.conflicts.map(c => c.kind).sort(), ["DuplicateMAC", "OutsidePool", "WrongName"]);
});

test("usage bar rounds up and marks a used pool", t => {
  t.is(usageBar(0n, 100n), "[..........]   0%");
  t.is(usageBar(1n, 1000n), "[#.........]  <1%");
  t.is(usageBar(100n, 100n), "[##########] 100%");
});

test("leases: sorted by address, filtered by subnet, namespace and phase", t => {
  const all = listLeases(leases);
  t.deepEqual(
    all.map(r => r.ip.split(".")[3]),
    ["10", "11", "12", "13", "14"],
  );
  t.is(all[1].poolOwner, "pepr-system/pepr-pepr-macvlan-6d9f-abcde");
  t.is(listLeases(leases, { namespace: "team-a", phase: "Bound" }).length, 2);
  t.is(listLeases(leases, { subnet: "other" }).length, 0);
});

test("who-has: the lease, its pod, node, MAC and since when; an unknown address has nobody", t => {
  const w = whoHas(snapshot(), "198.18.100.10");
  t.is(w.leases.length, 1);
  t.is(w.leases[0].pod, "team-a/web-1");
  t.is(w.leases[0].node, "node-1");
  t.is(w.leases[0].podPhase, "Running");
  t.deepEqual(w.pods[0].via, ["annotation", "network-status"]);
  const text = whoHasText(w, NOW);
  t.regex(
    text,
    /lease lan-198-18-100-10 \(subnet lan\), Bound since 2026-12-01T11:50:00.000Z \(10m ago\)/,
  );
  t.regex(text, /mac:\s+02:00:c6:12:64:10/);
  t.deepEqual(whoHas(snapshot(), "198.18.100.99"), { ip: "198.18.100.99", leases: [], pods: [] });
});

test("who-has: a pod that claims an address no lease protects is pointed out", t => {
  const s = snapshot();
  const w = whoHas({ leases: [], pods: s.pods }, "198.18.100.14");
  t.regex(whoHasText(w, NOW), /claimed by pod team-a\/web-2 .* no lease protects this/);
});

test("free: pool addresses first, then fresh lowest first, then reusable; cooling ones never", t => {
  const r = nextFree(lan, leases, 10, NOW);
  t.deepEqual(
    r.addresses.map(a => `${a.ip.split(".")[3]}:${a.source}`),
    [
      "11:pool",
      "15:fresh",
      "16:fresh",
      "17:fresh",
      "18:fresh",
      "19:fresh",
      "20:fresh",
      "13:reused",
    ],
  );
  t.is(r.addresses[0].replica, "pepr-system/pepr-pepr-macvlan-6d9f-abcde");
  t.is(r.cooling, 1);
  t.regex(r.end!, /exhausted.*cooling/);
  t.deepEqual(
    nextFree(lan, leases, 2, NOW).addresses.map(a => a.ip),
    ["198.18.100.11", "198.18.100.15"],
  );
});

test("why: a healthy pod passes every step", t => {
  const x = why("team-a/web-1");
  t.true(x.healthy, explanationText(x));
  t.deepEqual(
    x.checks.map(c => c.step),
    ["pod", "opt-in", "subnet", "allow-list", "lease", "multus", "network-status", "agent"],
  );
  t.regex(explanationText(x), /=> everything is in place/);
});

test("why: no interface and a not-ready node agent, with the pod's Events and what to do", t => {
  const x = why("team-a/web-2");
  t.false(x.healthy);
  const failed = x.checks.filter(c => c.status === "fail").map(c => c.step);
  t.deepEqual(failed, ["network-status", "agent"]);
  t.regex(x.todo!, /check Multus and the macvlan\/static CNI plugins on node-2/);
  t.is(x.events[0].reason, "FailedCreatePodSandBox");
  t.regex(
    explanationText(x),
    /\[FAIL\] agent\s+agent on node-2 reports lan not ready: parent eth0 is missing/,
  );
});

test("why: a pod that is not opted in is told how to opt in", t => {
  const x = why("team-b/plain");
  t.true(x.optedOut);
  t.regex(x.todo!, /kubectl label namespace team-b macvlan.dev\/subnet=<subnet>/);
});

test("why: a missing pod shows the namespace's recent admission refusals", t => {
  const x = why("team-a/dmz-5f6-abcde");
  t.false(x.healthy);
  t.regex(x.checks[0].detail, /admission refused 1 pod/);
  t.regex(x.events[0].message, /may not use MacvlanSubnet "dmz"/);
});

test("why: namespace not allowed by the subnet, and a pod whose lease is gone", t => {
  const s = snapshot();
  const only = { ...lan, spec: { ...lan.spec!, namespaces: ["team-z"] } };
  const x = explainPod({ ...s, subnets: [only], namespace: "team-a", name: "web-1" });
  t.is(x.checks.find(c => c.step === "allow-list")!.status, "fail");
  const y = explainPod({ ...s, leases: [], namespace: "team-a", name: "web-1" });
  const leaseCheck = y.checks.find(c => c.step === "lease")!;
  t.is(leaseCheck.status, "fail");
  t.regex(leaseCheck.detail, /claim 198.18.100.10 but no lease lan-198-18-100-10 exists/);
  t.regex(y.todo!, /kubectl delete pod -n team-a web-1/);
});

test("doctor: finds the missing agent, the node's parent and the pod without its interface", t => {
  const r = doctor(doctorInput());
  t.false(r.healthy);
  const fails = r.checks.filter(c => c.status === "fail").map(c => `${c.step}: ${c.detail}`);
  t.true(
    fails.some(f => /^agent: node node-2: no agent pod/.test(f)),
    fails.join("\n"),
  );
  t.true(fails.some(f => /^node: lan on node-2: parent eth0 is missing/.test(f)));
  t.true(
    fails.some(f => /^multus: node node-2: 1 running pod\(s\) without a macvlan interface/.test(f)),
  );
  t.regex(doctorText(r), /to fix:\n {2}1\. /);
});

test("doctor: a healthy cluster passes; a dead webhook and missing CRDs fail", t => {
  const input = doctorInput();
  const healthy = {
    ...input,
    nodes: [input.nodes[0]],
    subnets: [{ ...lan, status: { ...lan.status, nodes: [lan.status!.nodes![0]] } }],
    leases: leases.filter(l => l.spec?.podRef?.name !== "web-2"),
  };
  const r = doctor(healthy);
  t.true(r.healthy, doctorText(r));
  const dead = doctor({
    ...healthy,
    crds: [],
    webhook: { configured: true, ok: false, ms: 10000, error: "context deadline exceeded" },
  });
  t.false(dead.healthy);
  t.true(dead.checks.some(c => c.step === "webhook" && /context deadline exceeded/.test(c.detail)));
  t.is(dead.checks.filter(c => c.step === "crd" && c.status === "fail").length, 3);
});

test("doctor: a nearly full subnet warns, a full one fails", t => {
  const input = doctorInput();
  const full = Array.from({ length: 11 }, (_, i) => ({
    ...leases[0],
    metadata: { ...leases[0].metadata, name: `lan-198-18-100-${10 + i}` },
    spec: { ...leases[0].spec!, ip: `198.18.100.${10 + i}`, mac: `02:00:00:00:01:${10 + i}` },
  }));
  const r = doctor({ ...input, leases: full });
  t.true(
    r.checks.some(c => c.step === "subnet" && c.status === "fail" && /exhausted/.test(c.detail)),
  );
  const nearly = doctor({ ...input, leases: full.slice(1) });
  t.true(
    nearly.checks.some(c => c.step === "subnet" && c.status === "warn"),
    doctorText(nearly),
  );
});

test("release: the product's release decision with a precondition and a ManualRelease Event", t => {
  const plan = planRelease(snapshot(), "198.18.100.10");
  if (!plan.ok) return t.fail(plan.message);
  const [status, event] = plan.writes;
  t.like(status, {
    op: "setLeaseStatus",
    lease: { name: "lan-198-18-100-10", uid: "uid-198.18.100.10", resourceVersion: "7" },
    status: { phase: "Released", releasedAt: NOW.toISOString() },
  });
  t.like(event, { op: "event", type: "Warning", reason: "ManualRelease" });
  t.regex(plan.warning!, /pod team-a\/web-1 still runs/);
  const again = planRelease(snapshot(), "198.18.100.12");
  t.deepEqual(again, { ok: false, message: "lease lan-198-18-100-12 is already Released" });
  t.false(planRelease(snapshot(), "198.18.100.99").ok);
  t.false(planRelease(snapshot(), "not-an-ip").ok);
});
