// The watcher's read caches. Most pod events (status changes) need no write: the caches let the
// watcher see that without a request. Every write still starts from a fresh read.
import { a } from "pepr";
import { Informer } from "./k8s/informer";
import { MacvlanLease } from "./k8s/kinds";

export const watchCaches = {
  leases: new Informer(MacvlanLease),
  services: new Informer(a.Service),
};

export function startWatchCaches(): Promise<void> {
  return Promise.all([watchCaches.leases.start(), watchCaches.services.start()]).then(
    () => undefined,
  );
}
