// A small cluster as kubectl's JSON shows it, for the plugin's tests: subnet "lan" with a pool of
// eleven addresses (.10-.20), two nodes (node-2's agent is missing and reports the parent gone),
// a healthy pod, a pod without its interface, a pool lease, a cooling and a reusable release;
// dualStack() adds subnet "lan6" (IPv6, same parent) and a healthy dual-stack pod on node-1.
import { MacvlanLease, MacvlanSubnet } from "../../../crds/types";
import { leaseName } from "../../../lib/ipam";
import { Kubectl } from "../../../cli/kubectl";
import { DoctorInput } from "../../../cli/doctor";
import { KubeEvent, Namespace, Pod, Snapshot } from "../../../cli/snapshot";
import { Write } from "../../../lib/decide/writes";

export const NOW = new Date("2026-12-01T12:00:00Z");
const ago = (s: number) => new Date(NOW.getTime() - s * 1000).toISOString();

export const lan: MacvlanSubnet = {
  metadata: { name: "lan", uid: "lan-uid", generation: 1 },
  spec: {
    master: "eth0",
    cidr: "198.18.100.0/24",
    gateway: "198.18.100.1",
    ranges: [{ start: "198.18.100.10", end: "198.18.100.20" }],
    reuseDelaySeconds: 30,
  },
  status: {
    total: "11",
    allocated: 3,
    free: "8",
    conditions: [
      {
        type: "Ready",
        status: "True",
        reason: "Available",
        message: "8 of 11 addresses free",
        lastTransitionTime: ago(3600),
      },
    ],
    nodes: [
      { node: "node-1", ready: true, shim: "mvshim-eth0", message: "shim mvshim-eth0 up on eth0" },
      { node: "node-2", ready: false, message: "parent eth0 is missing on this node" },
    ],
  },
};

function mvl(
  ip: string,
  o: Partial<MacvlanLease["spec"]> & {
    phase?: string;
    releasedAt?: string;
    annotations?: Record<string, string>;
  } = {},
): MacvlanLease {
  const { phase, releasedAt, annotations, ...spec } = o;
  const subnet = spec.subnet ?? "lan";
  return {
    metadata: {
      name: leaseName(subnet, ip),
      uid: `uid-${ip}`,
      resourceVersion: "7",
      labels: { "macvlan.dev/subnet": subnet },
      annotations: annotations ?? {},
      creationTimestamp: new Date(ago(600)),
    },
    spec: { subnet: "lan", ip, mac: `02:00:c6:12:64:${ip.split(".")[3]}`, fixed: false, ...spec },
    status: phase
      ? { phase: phase as "Bound", reservedAt: ago(600), ...(releasedAt ? { releasedAt } : {}) }
      : undefined,
  };
}

export const leases: MacvlanLease[] = [
  mvl("198.18.100.10", {
    phase: "Bound",
    podRef: { namespace: "team-a", name: "web-1", uid: "web-1-uid" },
    node: "node-1",
  }),
  // A pool lease: pre-leased by an admission replica, no pod yet, no status.
  mvl("198.18.100.11", {
    annotations: {
      "macvlan.dev/pool-owner": "pepr-system/pepr-pepr-macvlan-6d9f-abcde/boot1",
      "macvlan.dev/reservation-sha256": "ab".repeat(32),
    },
  }),
  mvl("198.18.100.12", {
    phase: "Released",
    releasedAt: ago(10),
    podRef: { namespace: "team-a", name: "old-1" },
  }),
  mvl("198.18.100.13", {
    phase: "Released",
    releasedAt: ago(3600),
    podRef: { namespace: "team-a", name: "old-2" },
  }),
  mvl("198.18.100.14", {
    phase: "Bound",
    podRef: { namespace: "team-a", name: "web-2", uid: "web-2-uid" },
    node: "node-2",
  }),
];

const selection = (ip: string) =>
  JSON.stringify([
    {
      name: "macvlan-lan",
      namespace: "team-a",
      interface: "net1",
      ips: [`${ip}/24`],
      mac: `02:00:c6:12:64:${ip.split(".")[3]}`,
    },
  ]);

function webPod(name: string, ip: string, node: string, networkStatus: boolean): Pod {
  return {
    metadata: {
      name,
      namespace: "team-a",
      uid: `${name}-uid`,
      labels: { app: "web" },
      annotations: {
        "macvlan.dev/subnet": "lan",
        "macvlan.dev/ip": ip,
        "macvlan.dev/mac": `02:00:c6:12:64:${ip.split(".")[3]}`,
        "macvlan.dev/reservation": `${name}-token`,
        "k8s.v1.cni.cncf.io/networks": selection(ip),
        ...(networkStatus
          ? {
              "k8s.v1.cni.cncf.io/network-status": JSON.stringify([
                { name: "cbr0", interface: "eth0", ips: ["10.244.1.5"], default: true },
                {
                  name: "team-a/macvlan-lan",
                  interface: "net1",
                  ips: [ip],
                  mac: "02:00:c6:12:64:0a",
                },
              ]),
            }
          : {}),
      },
    },
    spec: { nodeName: node },
    status: {
      phase: "Running",
      podIP: "10.244.1.5",
      conditions: [{ type: "Ready", status: "True" }],
    },
  };
}

const agentPod = (node: string): Pod => ({
  metadata: {
    name: `pepr-macvlan-agent-${node}`,
    namespace: "pepr-system",
    uid: `agent-${node}`,
    labels: { "app.kubernetes.io/name": "pepr-macvlan-agent" },
  },
  spec: { nodeName: node },
  status: { phase: "Running", conditions: [{ type: "Ready", status: "True" }] },
});

const modulePod = (name: string): Pod => ({
  metadata: { name, namespace: "pepr-system", uid: name },
  spec: { nodeName: "node-1" },
  status: { phase: "Running", conditions: [{ type: "Ready", status: "True" }] },
});

export const pods: Pod[] = [
  webPod("web-1", "198.18.100.10", "node-1", true),
  webPod("web-2", "198.18.100.14", "node-2", false),
  {
    metadata: { name: "plain", namespace: "team-b", uid: "plain-uid", annotations: {} },
    spec: { nodeName: "node-1" },
    status: { phase: "Running", conditions: [{ type: "Ready", status: "True" }] },
  },
  agentPod("node-1"),
];

export const namespaces: Namespace[] = [
  { metadata: { name: "team-a", labels: { "macvlan.dev/subnet": "lan" } } },
  { metadata: { name: "team-b", labels: {} } },
  { metadata: { name: "pepr-system", labels: {} } },
];

export const events: KubeEvent[] = [
  {
    type: "Warning",
    reason: "FailedCreate",
    message:
      'Error creating: admission webhook "pepr-pepr-macvlan.pepr.dev" denied the request: namespace "team-a" may not use MacvlanSubnet "dmz"',
    lastTimestamp: ago(30),
    involvedObject: { kind: "ReplicaSet", name: "dmz-5f6", namespace: "team-a" },
  },
  {
    type: "Warning",
    reason: "FailedCreatePodSandBox",
    message: 'multus: error adding container to network "macvlan-lan"',
    lastTimestamp: ago(20),
    involvedObject: { kind: "Pod", name: "web-2", namespace: "team-a", uid: "web-2-uid" },
  },
];

export const snapshot = (): Snapshot => ({
  subnets: [lan],
  leases,
  pods,
  namespaces,
  events,
  now: NOW,
});

export const doctorInput = (): DoctorInput => ({
  ...snapshot(),
  nodes: [
    { name: "node-1", ready: true },
    { name: "node-2", ready: true },
  ],
  crds: [
    "network-attachment-definitions.k8s.cni.cncf.io",
    "macvlansubnets.macvlan.dev",
    "macvlanleases.macvlan.dev",
  ],
  webhook: { configured: true, ok: true, ms: 180 },
  modulePods: [
    modulePod("pepr-pepr-macvlan-6d9f-abcde"),
    modulePod("pepr-pepr-macvlan-6d9f-fghij"),
    modulePod("pepr-pepr-macvlan-watcher-7c4-xyz"),
  ],
});

/** A Kubectl that answers from the fixture and records the writes it is asked to make. */
export function fakeKubectl(input: DoctorInput = doctorInput()) {
  const applied: Write[] = [];
  const bySelector = (sel?: string) =>
    sel
      ? input.leases.filter(l => l.metadata?.labels?.["macvlan.dev/subnet"] === sel.split("=")[1])
      : input.leases;
  const k = {
    subnets: async () => input.subnets,
    leases: async (sel?: string) => bySelector(sel),
    pods: async () => input.pods,
    pod: async (ns: string, name: string) =>
      input.pods.find(p => p.metadata?.namespace === ns && p.metadata?.name === name),
    namespaces: async () => input.namespaces,
    events: async (ns: string) => input.events.filter(e => e.involvedObject?.namespace === ns),
    agentPods: async () => input.pods.filter(p => p.metadata?.namespace === "pepr-system"),
    modulePods: async () => input.modulePods,
    crds: async () => input.crds,
    nodes: async () => input.nodes,
    probeWebhook: async () => input.webhook,
    apply: async (w: Write[]) => void applied.push(...w),
  };
  return { kubectl: k as unknown as Kubectl, applied };
}

export const lan6: MacvlanSubnet = {
  metadata: { name: "lan6", uid: "lan6-uid", generation: 1 },
  spec: {
    master: "eth0",
    cidr: "2001:db8:18::/64",
    ranges: [{ start: "2001:db8:18::10", end: "2001:db8:18::20" }],
    reuseDelaySeconds: 30,
  },
  status: {
    conditions: [
      {
        type: "Ready",
        status: "True",
        reason: "Available",
        message: "16 of 17 addresses free",
        lastTransitionTime: ago(3600),
      },
    ],
    nodes: [
      { node: "node-1", ready: true, shim: "mvshim-eth0", message: "shim mvshim-eth0 up on eth0" },
    ],
  },
};

const DUAL_V4 = "198.18.100.15";
const DUAL_V6 = "2001:db8:18::15";
const DUAL_MAC = "02:00:c6:12:64:15";

/** The leases of pod team-a/dual-1: one per family, both Bound on node-1, one MAC. */
export const dualLeases: MacvlanLease[] = [
  mvl(DUAL_V4, {
    phase: "Bound",
    podRef: { namespace: "team-a", name: "dual-1", uid: "dual-1-uid" },
    node: "node-1",
    mac: DUAL_MAC,
    annotations: { "macvlan.dev/nad": "macvlan-lan--lan6" },
  }),
  mvl(DUAL_V6, {
    subnet: "lan6",
    phase: "Bound",
    podRef: { namespace: "team-a", name: "dual-1", uid: "dual-1-uid" },
    node: "node-1",
    mac: DUAL_MAC,
    annotations: { "macvlan.dev/nad": "macvlan-lan--lan6" },
  }),
];

/** A dual-stack pod as admission and Multus leave it: both addresses on one net1. */
export const dualPod: Pod = {
  metadata: {
    name: "dual-1",
    namespace: "team-a",
    uid: "dual-1-uid",
    annotations: {
      "macvlan.dev/subnet": "lan,lan6",
      "macvlan.dev/ip": `${DUAL_V4},${DUAL_V6}`,
      "macvlan.dev/mac": DUAL_MAC,
      "macvlan.dev/reservation": "dual-1-token",
      "k8s.v1.cni.cncf.io/networks": JSON.stringify([
        {
          name: "macvlan-lan--lan6",
          namespace: "team-a",
          interface: "net1",
          ips: [`${DUAL_V4}/24`, `${DUAL_V6}/64`],
          mac: DUAL_MAC,
        },
      ]),
      "k8s.v1.cni.cncf.io/network-status": JSON.stringify([
        { name: "cbr0", interface: "eth0", ips: ["10.244.1.6"], default: true },
        {
          name: "team-a/macvlan-lan--lan6",
          interface: "net1",
          ips: [DUAL_V4, DUAL_V6],
          mac: DUAL_MAC,
        },
      ]),
    },
  },
  spec: { nodeName: "node-1" },
  status: {
    phase: "Running",
    podIP: "10.244.1.6",
    conditions: [{ type: "Ready", status: "True" }],
  },
};

/** The snapshot with lan6 and the dual-stack pod and its two leases added. */
export const dualStack = <T extends Snapshot>(s: T): T => ({
  ...s,
  subnets: [...s.subnets, lan6],
  leases: [...s.leases, ...dualLeases],
  pods: [...s.pods, dualPod],
});
