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
import { NOW, doctorInput, dualStack, lan, leases, snapshot } from "./helpers/cli-cluster";

const why = (target: string) => {
  const [namespace, name] = target.split("/");
  return explainPod({ ...snapshot(), namespace, name });
};

/** The fixture with node-2 and web-2's lease taken away: nothing is wrong. */
const healthyDoctorInput = () => {
  const input = doctorInput();
  return {
    ...input,
    nodes: [input.nodes[0]],
    subnets: [{ ...lan, status: { ...lan.status, nodes: [lan.status!.nodes![0]] } }],
    leases: leases.filter(l => l.spec?.podRef?.name !== "web-2"),
  };
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

test("why: a healthy dual-stack pod is explained family by family; doctor reports it OK", t => {
  const x = explainPod({ ...dualStack(snapshot()), namespace: "team-a", name: "dual-1" });
  const text = explanationText(x);
  t.true(x.healthy, text);
  t.deepEqual(
    x.checks.map(c => c.step),
    [
      "pod",
      "opt-in",
      "subnet",
      "allow-list",
      "subnet",
      "allow-list",
      "lease",
      "lease",
      "multus",
      "network-status",
      "agent",
      "agent",
    ],
  );
  t.regex(text, /opt-in\s+asks for subnets lan and lan6, dual stack \(pod annotation\)/);
  t.regex(text, /subnet\s+MacvlanSubnet lan \(IPv4\) 198\.18\.100\.0\/24/);
  t.regex(text, /subnet\s+MacvlanSubnet lan6 \(IPv6\) 2001:db8:18::\/64/);
  t.regex(text, /allow-list\s+namespace team-a may use lan6 \(IPv6\)/);
  t.regex(
    text,
    /lease lan-198-18-100-15: 198\.18\.100\.15 02:00:c6:12:64:15, Bound on node node-1/,
  );
  t.regex(
    text,
    /lease lan6-2001-0db8-\S+: 2001:db8:18::15 02:00:c6:12:64:15, Bound on node node-1/,
  );
  t.regex(text, /selects team-a\/macvlan-lan--lan6 as net1 with 198\.18\.100\.15, 2001:db8:18::15/);
  t.regex(text, /network-status\s+Multus attached net1 198\.18\.100\.15, 2001:db8:18::15/);
  t.regex(text, /it routes 198\.18\.100\.15 of lan \(IPv4\) via shim mvshim-eth0/);
  t.regex(text, /it routes 2001:db8:18::15 of lan6 \(IPv6\) via shim mvshim-eth0/);
  const r = doctor(dualStack(healthyDoctorInput()));
  t.true(r.healthy, doctorText(r));
  t.deepEqual(
    r.checks.filter(c => c.status !== "ok"),
    [],
    doctorText(r),
  );
});

test("why and doctor: a dual-stack pod without its IPv6 lease names that family and what to do", t => {
  const s = dualStack(snapshot());
  const noV6 = s.leases.filter(l => l.spec?.subnet !== "lan6");
  const x = explainPod({ ...s, leases: noV6, namespace: "team-a", name: "dual-1" });
  t.false(x.healthy);
  const [v4, v6] = x.checks.filter(c => c.step === "lease");
  t.is(v4.status, "ok");
  t.is(v6.status, "fail");
  t.regex(v6.detail, /no MacvlanLease of lan6 \(IPv6\) belongs to pod team-a\/dual-1/);
  t.regex(v6.detail, /claim 2001:db8:18::15 but no lease lan6-2001-0db8-\S+ exists/);
  t.regex(v6.detail, /its other family's lease lan-198-18-100-15 does/);
  t.regex(x.todo!, /watcher's repair to remake lease lan6-2001-0db8-\S+ for 2001:db8:18::15/);
  t.regex(x.todo!, /kubectl delete pod -n team-a dual-1/);
  t.regex(explanationText(x), /\[FAIL\] lease\s+no MacvlanLease of lan6 \(IPv6\)/);
  const healthy = dualStack(healthyDoctorInput());
  const r = doctor({ ...healthy, leases: healthy.leases.filter(l => l.spec?.subnet !== "lan6") });
  t.false(r.healthy);
  const lost = r.checks.filter(c => c.status === "fail");
  t.is(lost.length, 1, doctorText(r));
  t.regex(lost[0].detail, /pod team-a\/dual-1 holds no lease of lan6 for 2001:db8:18::15/);
  t.regex(lost[0].fix!, /kubectl macvlan why team-a\/dual-1/);
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
  const healthy = healthyDoctorInput();
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

test("why and doctor: a dual-stack pod whose net1 lacks its IPv6 address names that family", t => {
  const s = dualStack(snapshot());
  const pod = s.pods.find(p => p.metadata?.name === "dual-1")!;
  const status = [{ name: "team-a/macvlan-lan--lan6", interface: "net1", ips: ["198.18.100.15"] }];
  const v4only = {
    ...pod,
    metadata: {
      ...pod.metadata,
      annotations: {
        ...pod.metadata!.annotations,
        "k8s.v1.cni.cncf.io/network-status": JSON.stringify(status),
      },
    },
  };
  const pods = s.pods.map(p => (p === pod ? v4only : p));
  const x = explainPod({ ...s, pods, namespace: "team-a", name: "dual-1" });
  const check = x.checks.find(c => c.step === "network-status")!;
  t.is(check.status, "fail");
  t.regex(check.detail, /not the leased 2001:db8:18::15 of lan6 \(IPv6\)/);
  const healthy = dualStack(healthyDoctorInput());
  const r = doctor({
    ...healthy,
    pods: healthy.pods.map(p => (p.metadata?.name === "dual-1" ? v4only : p)),
  });
  t.true(
    r.checks.some(
      c => c.step === "multus" && c.status === "fail" && /team-a\/dual-1/.test(c.detail),
    ),
    doctorText(r),
  );
});
