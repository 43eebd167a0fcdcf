// What bench:scale creates: S MacvlanSubnets (even index: an IPv4 /18 inside 198.18.0.0/15, odd:
// an IPv6 /64 under 2001:db8::/32; each on its own VLAN, so that the /18s never overlap on one
// parent even where they repeat), one namespace opted in to each, and pods spread round-robin
// over the namespaces and scheduled to the kwok nodes.
import { Cluster, macvlanSubnet, waitFor } from "../../test/integration/helpers";
import { KWOK_LABEL, KWOK_TAINT } from "./kwok";

/** The eight /18s of 198.18.0.0/15 but the first (the cluster's LAN and nodes). */
const V4_18S = [
  "198.18.64",
  "198.18.128",
  "198.18.192",
  "198.19.0",
  "198.19.64",
  "198.19.128",
  "198.19.192",
];

export const subnetName = (i: number) => `scale-${i % 2 ? "v6" : "v4"}-${Math.floor(i / 2)}`;
export const namespaceOf = (i: number) => `scale-ns-${i}`;

export function subnet(i: number) {
  const k = Math.floor(i / 2);
  if (i % 2) {
    const prefix = `2001:db8:5c${k.toString(16).padStart(2, "0")}`;
    return macvlanSubnet(subnetName(i), {
      vlan: 300 + k,
      cidr: `${prefix}::/64`,
      gateway: `${prefix}::1`,
      reuseDelaySeconds: 0,
    });
  }
  const net = V4_18S[k % V4_18S.length];
  return macvlanSubnet(subnetName(i), {
    vlan: 200 + k,
    cidr: `${net}.0/18`,
    gateway: `${net}.1`,
    reuseDelaySeconds: 0,
  });
}

/** A pod for kwok: scheduled to a fake node, never run. */
export function benchPod(namespace: string, name: string) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace, labels: { app: "scale" } },
    spec: {
      nodeSelector: { [KWOK_LABEL.key]: KWOK_LABEL.value },
      tolerations: [{ key: KWOK_TAINT.key, operator: "Exists", effect: KWOK_TAINT.effect }],
      terminationGracePeriodSeconds: 0,
      containers: [{ name: "main", image: "fake-image" }],
    },
  };
}

/** Runs fn over items with at most `limit` in flight. */
export async function inBatches<T>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Applies the subnets and their namespaces; waits for every subnet Ready and every NAD. */
export async function createSubnets(c: Cluster, count: number): Promise<void> {
  const idx = Array.from({ length: count }, (_, i) => i);
  await c.apply(idx.map(subnet));
  for (const i of idx)
    await c.createNamespace(namespaceOf(i), { "macvlan.dev/subnet": subnetName(i) });
  await waitFor(
    async () => {
      for (const i of idx) {
        const s = await c.api.getOrUndefined<{
          status?: { conditions?: { type: string; status: string }[] };
        }>(`/apis/macvlan.dev/v1alpha1/macvlansubnets/${subnetName(i)}`);
        if (!s?.status?.conditions?.some(x => x.type === "Ready" && x.status === "True"))
          return false;
        const nad = await c.api.getOrUndefined(
          `/apis/k8s.cni.cncf.io/v1/namespaces/${namespaceOf(i)}/network-attachment-definitions/macvlan-${subnetName(i)}`,
        );
        if (!nad) return false;
      }
      return true;
    },
    { what: `${count} MacvlanSubnets Ready with their NADs`, timeoutMs: 300_000, intervalMs: 2000 },
  );
}
