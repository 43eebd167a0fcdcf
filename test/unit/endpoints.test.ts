import test from "ava";
import {
  PodView,
  renderEndpointSlice,
  renderHeadlessService,
  ServiceView,
} from "../../lib/render/endpoints";

const svc: ServiceView = {
  name: "web",
  namespace: "a",
  uid: "svc-uid",
  selector: { app: "web" },
  ports: [
    { name: "http", port: 80, targetPort: "http" },
    { name: "metrics", port: 9000, targetPort: 9100 },
  ],
};

const pod = (name: string, over: Partial<PodView> = {}): PodView => ({
  name,
  namespace: "a",
  uid: `${name}-uid`,
  labels: { app: "web" },
  ips: ["198.18.100.10"],
  ready: true,
  nodeName: "n1",
  containerPorts: [{ name: "http", containerPort: 8080 }],
  ...over,
});

test("the headless twin has no selector, no cluster IP and the Service's ports", t => {
  const out = renderHeadlessService(svc);
  t.is(out.metadata.name, "web-macvlan");
  t.is(out.spec.clusterIP, "None");
  t.false("selector" in out.spec);
  t.deepEqual(
    out.spec.ports.map(p => p.port),
    [80, 9000],
  );
  t.is(out.metadata.ownerReferences[0].uid, "svc-uid");
});

test("the slice lists the macvlan IPs of ready selected pods only, with resolved target ports", t => {
  const slice = renderEndpointSlice(
    svc,
    [
      pod("b", { ips: ["198.18.100.11"] }),
      pod("a"),
      pod("not-ready", { ready: false, ips: ["198.18.100.12"] }),
      pod("other-app", { labels: { app: "db" }, ips: ["198.18.100.13"] }),
      pod("no-ip", { ips: [] }),
      pod("elsewhere", { namespace: "b", ips: ["198.18.100.14"] }),
    ],
    "IPv4",
  );
  t.is(slice.metadata.labels["kubernetes.io/service-name"], "web-macvlan");
  t.deepEqual(
    slice.endpoints.map(e => e.addresses[0]),
    ["198.18.100.10", "198.18.100.11"],
  );
  t.deepEqual(
    slice.ports.map(p => p.port),
    [8080, 9100],
  );
  t.is(slice.endpoints[0].targetRef.name, "a");
});

test("dual stack: one slice per family, each listing the pod's address of that family", t => {
  const pods = [
    pod("dual", { ips: ["198.18.100.10", "2001:db8:18::10"] }),
    pod("v6-only", { ips: ["2001:db8:18::11"] }),
  ];
  const v4 = renderEndpointSlice(svc, pods, "IPv4");
  const v6 = renderEndpointSlice(svc, pods, "IPv6");
  t.is(v4.metadata.name, "web-macvlan");
  t.is(v6.metadata.name, "web-macvlan-ipv6");
  t.is(
    v6.metadata.labels["kubernetes.io/service-name"],
    "web-macvlan",
    "both slices serve the twin",
  );
  t.deepEqual(
    v4.endpoints.map(e => e.addresses),
    [["198.18.100.10"]],
  );
  t.deepEqual(
    v6.endpoints.map(e => e.addresses),
    [["2001:db8:18::10"], ["2001:db8:18::11"]],
  );
});

test("an empty selector selects nothing", t => {
  const slice = renderEndpointSlice({ ...svc, selector: {} }, [pod("a")], "IPv4");
  t.deepEqual(slice.endpoints, []);
});
