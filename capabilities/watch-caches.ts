// The watcher's read caches. Most pod events (status changes) need no write: the caches let the
// watcher see that without a request. Every write still starts from a fresh read.
// Leases are indexed by the pod uid and reservation token they carry, so a pod event looks up
// its few candidates instead of copying and scanning every lease (thousands per event before).
import { a } from "pepr";
import { Informer } from "./k8s/informer";
import { MacvlanLease } from "./k8s/kinds";
import { ANN_RESERVATION } from "../lib/names";

export const watchCaches = {
  leases: new Informer(MacvlanLease),
  services: new Informer(a.Service),
};

const byUid = new Map<string, Set<string>>();
const byToken = new Map<string, Set<string>>();

const keysOf = (l: MacvlanLease): [Map<string, Set<string>>, string | undefined][] => [
  [byUid, l.spec?.podRef?.uid],
  [byToken, l.metadata?.annotations?.[ANN_RESERVATION]],
];

watchCaches.leases.onChange((lease, phase, previous) => {
  const name = lease.metadata!.name!;
  for (const [index, key] of previous ? keysOf(previous) : []) {
    const names = key ? index.get(key) : undefined;
    names?.delete(name);
    if (names?.size === 0) index.delete(key!);
  }
  if (phase === "DELETED") return;
  for (const [index, key] of keysOf(lease)) {
    if (!key) continue;
    if (!index.has(key)) index.set(key, new Set());
    index.get(key)!.add(name);
  }
});

/** Cached leases that carry this pod's uid or reservation token (plus `extra` names, if cached). */
export function cachedLeasesFor(
  pod: { metadata?: { uid?: string; annotations?: Record<string, string> } },
  extra: string[] = [],
): MacvlanLease[] {
  const names = new Set(extra);
  const uid = pod.metadata?.uid;
  const token = pod.metadata?.annotations?.[ANN_RESERVATION];
  for (const n of (uid && byUid.get(uid)) || []) names.add(n);
  for (const n of (token && byToken.get(token)) || []) names.add(n);
  return [...names].flatMap(n => {
    const l = watchCaches.leases.get(n);
    return l ? [l] : [];
  });
}

export function startWatchCaches(): Promise<void> {
  return Promise.all([watchCaches.leases.start(), watchCaches.services.start()]).then(
    () => undefined,
  );
}
