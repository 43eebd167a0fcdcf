// The watcher's lease index: a pod event finds its leases by uid and token, and the index follows
// every change (a lease bound to a new uid, a deleted lease) without a scan of all leases.
import test from "ava";
import { cachedLeasesFor, watchCaches } from "../../capabilities/watch-caches";
import { lease } from "./helpers/objects";

const names = (ls: { metadata?: { name?: string } }[]) => ls.map(l => l.metadata?.name).sort();

test("leases are found by the pod's uid or token, and the index follows changes", t => {
  const reserved = lease({ ip: "198.18.100.11", token: "tok-1" });
  const bound = lease({ ip: "198.18.100.12", uid: "pod-2", phase: "Bound" });
  watchCaches.leases.upsert(reserved);
  watchCaches.leases.upsert(bound);
  for (let i = 0; i < 50; i++)
    watchCaches.leases.upsert(lease({ ip: `198.18.101.${i}`, uid: `x-${i}` }));
  const pod1 = { metadata: { uid: "pod-1", annotations: { "macvlan.dev/reservation": "tok-1" } } };
  t.deepEqual(names(cachedLeasesFor(pod1)), [reserved.metadata!.name]);
  t.deepEqual(names(cachedLeasesFor({ metadata: { uid: "pod-2" } })), [bound.metadata!.name]);
  // Bound to pod-1 now (the token stays): found by both, and pod-2 no longer finds it.
  const rebound = { ...bound, metadata: { ...bound.metadata, resourceVersion: "101" } };
  rebound.spec = { ...bound.spec!, podRef: { namespace: "team-a", uid: "pod-1" } };
  watchCaches.leases.upsert(rebound);
  t.deepEqual(names(cachedLeasesFor(pod1)), names([reserved, bound]));
  t.deepEqual(cachedLeasesFor({ metadata: { uid: "pod-2" } }), []);
  watchCaches.leases.forget(reserved);
  t.deepEqual(names(cachedLeasesFor(pod1)), [bound.metadata!.name]);
  t.deepEqual(cachedLeasesFor({ metadata: {} }), [], "a pod with neither finds nothing");
});
