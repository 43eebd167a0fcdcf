// The three set-ups of bench:peer, over the same pods: what each installs before its pods are
// created, the namespace and pod annotations its pods get, and how it counts addresses it still
// holds after everything was deleted.
import * as fs from "node:fs";
import * as path from "node:path";
import { paths } from "../../hack/cluster/config";
import { deploy } from "../../hack/module/deploy";
import { Cluster, macvlanSubnet, waitFor } from "../../test/integration/helpers";
import { LAN_CIDR, LAN_GATEWAY, PeerOptions, SetupName, ipAdd, podsOnNode, pool } from "./config";
import {
  installWhereabouts,
  removeWhereaboutsReconciler,
  whereaboutsHeld,
  whereaboutsNad,
} from "./whereabouts";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

export interface Held {
  count: number;
  detail?: string;
}

export interface Setup {
  name: SetupName;
  namespace: string;
  namespaceLabels: Record<string, string>;
  /** Installs what the set-up needs (outside the measured window); returns the objects to apply in its namespace. */
  install(c: Cluster): Promise<Json[]>;
  /** Annotations of a pod pinned to node k. */
  podAnnotations(k: number): Record<string, string>;
  /** Addresses still held (after the pods are gone), with a breakdown where there is one. */
  held(c: Cluster): Promise<Held>;
  /** After the set-up (before the next one). */
  remove(c: Cluster): Promise<void>;
}

const selection = (nad: string) => JSON.stringify([{ name: nad, interface: "net1" }]);
const HOST_LOCAL_DIR = () => path.join(paths.state, "peer", "host-local");

/** Node k's slice of the pool: exactly its pods in the exact case, else an even share. */
function floorRange(o: PeerOptions, k: number): { start: string; end: string } {
  const p = pool(o);
  let offset = 0;
  const share = (j: number) => (o.exact ? podsOnNode(o, j) : Math.floor(p.size / o.nodes));
  for (let j = 1; j < k; j++) offset += share(j);
  return { start: ipAdd(p.first, offset), end: ipAdd(p.first, offset + share(k) - 1) };
}

function floorNad(o: PeerOptions, namespace: string, k: number): Json {
  const r = floorRange(o, k);
  const config = {
    cniVersion: "0.3.1",
    name: `peer-floor-${k}`,
    type: "macvlan",
    master: "eth0",
    mode: "bridge",
    ipam: {
      type: "host-local",
      dataDir: HOST_LOCAL_DIR(),
      ranges: [[{ subnet: LAN_CIDR, rangeStart: r.start, rangeEnd: r.end }]],
    },
  };
  return {
    apiVersion: "k8s.cni.cncf.io/v1",
    kind: "NetworkAttachmentDefinition",
    metadata: { name: `peer-floor-${k}`, namespace },
    spec: { config: JSON.stringify(config) },
  };
}

/** host-local's reservation files (one per held address) below its data dir. */
function hostLocalHeld(): number {
  const dir = HOST_LOCAL_DIR();
  if (!fs.existsSync(dir)) return 0;
  return fs
    .readdirSync(dir)
    .flatMap(net => fs.readdirSync(path.join(dir, net)))
    .filter(f => /^\d+\.\d+\.\d+\.\d+$/.test(f)).length;
}

const suffix = (o: PeerOptions) => (o.exact ? "-exact" : "");

export function floorSetup(o: PeerOptions): Setup {
  const namespace = `peer-floor${suffix(o)}`;
  return {
    name: "floor",
    namespace,
    namespaceLabels: {},
    install: async () => Array.from({ length: o.nodes }, (_, i) => floorNad(o, namespace, i + 1)),
    podAnnotations: k => ({ "k8s.v1.cni.cncf.io/networks": selection(`peer-floor-${k}`) }),
    held: async () => ({ count: hostLocalHeld() }),
    remove: async () => undefined,
  };
}

export function whereaboutsSetup(o: PeerOptions): Setup {
  const namespace = `peer-whereabouts${suffix(o)}`;
  return {
    name: "whereabouts",
    namespace,
    namespaceLabels: {},
    install: async c => {
      await installWhereabouts(c);
      return [whereaboutsNad(o, namespace)];
    },
    podAnnotations: () => ({ "k8s.v1.cni.cncf.io/networks": selection("peer-whereabouts") }),
    held: async c => ({ count: await whereaboutsHeld(c) }),
    remove: removeWhereaboutsReconciler,
  };
}

const SUBNET = "peer";

export function peprSetup(o: PeerOptions): Setup {
  const p = pool(o);
  return {
    name: "pepr-macvlan",
    namespace: `peer-pepr${suffix(o)}`,
    namespaceLabels: { "macvlan.dev/subnet": SUBNET },
    install: async c => {
      await deploy({ agent: true, way: "pepr-deploy" });
      await c.apply(
        macvlanSubnet(SUBNET, {
          cidr: LAN_CIDR,
          gateway: LAN_GATEWAY,
          ranges: [{ start: p.first, end: p.last }],
          reuseDelaySeconds: 0,
        }),
      );
      await waitFor(
        async () => {
          const s = await c.api.getOrUndefined<Json>(
            `/apis/macvlan.dev/v1alpha1/macvlansubnets/${SUBNET}`,
          );
          return s?.status?.conditions?.some(
            (x: Json) => x.type === "Ready" && x.status === "True",
          );
        },
        { what: `MacvlanSubnet ${SUBNET} Ready`, timeoutMs: 120_000 },
      );
      return [];
    },
    podAnnotations: () => ({}),
    // Every lease of the subnet (reuseDelaySeconds 0: a released lease may be deleted at once).
    held: async c => {
      const leases = (
        await c.api.get("/apis/macvlan.dev/v1alpha1/macvlanleases", {
          labelSelector: `macvlan.dev/subnet=${SUBNET}`,
        })
      ).items as Json[];
      const phases: Record<string, number> = {};
      for (const l of leases)
        phases[l.status?.phase ?? "none"] = (phases[l.status?.phase ?? "none"] ?? 0) + 1;
      const detail = Object.entries(phases)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ");
      return { count: leases.length, detail: detail || undefined };
    },
    remove: async () => undefined,
  };
}

export function setups(o: PeerOptions): Setup[] {
  const all = { floor: floorSetup, whereabouts: whereaboutsSetup, "pepr-macvlan": peprSetup };
  return o.setups.map(s => all[s](o));
}
