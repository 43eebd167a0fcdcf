// `kubectl macvlan leases` and `who-has <ip>`: the leases as rows, filtered, sorted by subnet and
// address; who holds one address (lease, pod, node, MAC, since when), and pods that claim it
// without a lease (their annotations or Multus' network-status say so: input, never proof).
import { LeasePhase } from "../crds/types";
import { isPoolLease, parseOwner, ANN_POOL_OWNER } from "../lib/decide/pool";
import { tryParseIp, compareBigInt } from "../lib/ipam";
import { ANN_IP, ANN_NETWORK_STATUS, LABEL_POD_NAMESPACE } from "../lib/names";
import { Column, age } from "./format";
import { MacvlanLease, Pod, Snapshot, nameOf } from "./snapshot";

export interface LeaseRow {
  name: string;
  subnet: string;
  ip: string;
  mac: string;
  phase: LeasePhase;
  /** `namespace/name` of the pod, `namespace/` while only reserved for a namespace, or "". */
  pod: string;
  podUid?: string;
  node: string;
  /** `StatefulSet ns/name #ordinal` for a sticky address. */
  owner?: string;
  fixed: boolean;
  /** The admission replica that pre-leased it (a pool lease, no pod yet). */
  poolOwner?: string;
  /** When the current phase began (reservedAt, releasedAt or the object's creation). */
  since: string;
}

export function leaseRow(l: MacvlanLease): LeaseRow {
  const spec = l.spec;
  const phase = l.status?.phase ?? "Reserved";
  const ref = spec?.podRef;
  const owner = spec?.owner;
  const pool = isPoolLease(l) ? parseOwner(l.metadata?.annotations?.[ANN_POOL_OWNER]) : undefined;
  const created = l.metadata?.creationTimestamp;
  return {
    name: nameOf(l),
    subnet: spec?.subnet ?? "",
    ip: spec?.ip ?? "",
    mac: spec?.mac ?? "",
    phase,
    pod: ref ? `${ref.namespace}/${ref.name ?? ""}` : "",
    podUid: ref?.uid,
    node: spec?.node ?? "",
    owner: owner && `StatefulSet ${owner.namespace}/${owner.name} #${owner.ordinal}`,
    fixed: !!spec?.fixed,
    poolOwner: pool && `${pool.namespace}/${pool.pod}`,
    since:
      (phase === "Released" ? l.status?.releasedAt : l.status?.reservedAt) ??
      (created ? new Date(created).toISOString() : ""),
  };
}

/** Numeric order of addresses (IPv4 before IPv6); unparseable ones last, by text. */
export function compareIps(a: string, b: string): number {
  const pa = tryParseIp(a);
  const pb = tryParseIp(b);
  if (!pa || !pb) return pa ? -1 : pb ? 1 : a.localeCompare(b);
  return pa.family - pb.family || compareBigInt(pa.value, pb.value);
}

export interface LeaseFilter {
  subnet?: string;
  namespace?: string;
  phase?: LeasePhase;
}

export function listLeases(leases: readonly MacvlanLease[], f: LeaseFilter = {}): LeaseRow[] {
  return leases
    .filter(l => !f.subnet || l.spec?.subnet === f.subnet)
    .filter(
      l =>
        !f.namespace ||
        l.spec?.podRef?.namespace === f.namespace ||
        l.metadata?.labels?.[LABEL_POD_NAMESPACE] === f.namespace,
    )
    .filter(l => !f.phase || (l.status?.phase ?? "Reserved") === f.phase)
    .map(leaseRow)
    .sort((a, b) => a.subnet.localeCompare(b.subnet) || compareIps(a.ip, b.ip));
}

export const leaseColumns = (now: Date): Column<LeaseRow>[] => [
  { header: "SUBNET", value: r => r.subnet },
  { header: "IP", value: r => r.ip },
  { header: "PHASE", value: r => r.phase },
  { header: "POD", value: r => r.pod || (r.poolOwner ? `(pool of ${r.poolOwner})` : "-") },
  { header: "NODE", value: r => r.node || "-" },
  { header: "AGE", value: r => age(r.since, now) },
  { header: "MAC", value: r => r.mac, wide: true },
  { header: "OWNER", value: r => r.owner ?? "-", wide: true },
  { header: "FIXED", value: r => String(r.fixed), wide: true },
  { header: "LEASE", value: r => r.name, wide: true },
];

// ---- who-has ----

export interface PodClaimant {
  pod: string;
  node: string;
  phase: string;
  /** Where the pod says it has the address. */
  via: ("annotation" | "network-status" | "podIP")[];
}

export interface WhoHas {
  ip: string;
  leases: (LeaseRow & { podPhase?: string })[];
  /** Pods that say they have the address; a pod here without a lease above is unprotected. */
  pods: PodClaimant[];
}

const sameIp = (a: string | undefined, b: string) => {
  const pa = a ? tryParseIp(a.trim()) : undefined;
  const pb = tryParseIp(b);
  return !!pa && !!pb && pa.family === pb.family && pa.value === pb.value;
};

function networkStatusIps(pod: Pod): string[] {
  try {
    const list = JSON.parse(pod.metadata?.annotations?.[ANN_NETWORK_STATUS] ?? "[]") as {
      ips?: string[];
    }[];
    return Array.isArray(list) ? list.flatMap(e => (Array.isArray(e?.ips) ? e.ips : [])) : [];
  } catch {
    return [];
  }
}

export function whoHas(s: Pick<Snapshot, "leases" | "pods">, ip: string): WhoHas {
  const podsByUid = new Map(s.pods.map(p => [p.metadata?.uid ?? "", p]));
  const leases = s.leases
    .filter(l => sameIp(l.spec?.ip, ip))
    .map(l => {
      const row = leaseRow(l);
      return { ...row, podPhase: podsByUid.get(row.podUid ?? "")?.status?.phase };
    });
  const pods: PodClaimant[] = [];
  for (const p of s.pods) {
    const via: PodClaimant["via"] = [];
    const ann = p.metadata?.annotations?.[ANN_IP];
    if (ann?.split(",").some(a => sameIp(a, ip))) via.push("annotation");
    if (networkStatusIps(p).some(a => sameIp(a, ip))) via.push("network-status");
    if (sameIp(p.status?.podIP, ip)) via.push("podIP");
    if (via.length)
      pods.push({
        pod: `${p.metadata?.namespace}/${p.metadata?.name}`,
        node: p.spec?.nodeName ?? "",
        phase: p.status?.phase ?? "",
        via,
      });
  }
  return { ip, leases, pods };
}

/** Lines of `who-has` for a person. */
export function whoHasText(w: WhoHas, now: Date): string {
  const lines: string[] = [];
  if (!w.leases.length) lines.push(`${w.ip}: no MacvlanLease holds this address`);
  for (const l of w.leases) {
    const holder = l.pod
      ? `pod ${l.pod}${l.podPhase ? ` (${l.podPhase})` : l.podUid ? " (pod gone)" : ""}`
      : l.poolOwner
        ? `pre-leased by admission replica ${l.poolOwner}, no pod yet`
        : "no pod";
    lines.push(
      `${w.ip}: lease ${l.name} (subnet ${l.subnet}), ${l.phase} since ${l.since || "?"} (${age(l.since, now)} ago)`,
      `  holder: ${holder}`,
      `  node:   ${l.node || "-"}`,
      `  mac:    ${l.mac}`,
    );
    if (l.owner) lines.push(`  sticky: ${l.owner}`);
  }
  const leased = new Set(w.leases.map(l => l.pod));
  for (const p of w.pods) {
    const note = leased.has(p.pod)
      ? ""
      : "  <- no lease protects this: kubectl macvlan why " + p.pod;
    lines.push(`  claimed by pod ${p.pod} on ${p.node || "-"} via ${p.via.join(", ")}${note}`);
  }
  return lines.join("\n") + "\n";
}
