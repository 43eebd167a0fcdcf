// Coalesces bursts of lease and namespace changes into one subnet reconcile per subnet.
import { Log } from "pepr";
import { reconcileSubnetByName } from "./reconcile";
import { describe } from "../../lib/k8s/errors";

const pending = new Map<string, NodeJS.Timeout>();
const forced = new Set<string>();
const running = new Map<string, Promise<void>>();
const DEBOUNCE_MS = 1000;

/** `force`: re-apply the subnet's NADs even where they are believed to exist (one was touched). */
export function scheduleSubnetReconcile(name: string, opts: { force?: boolean } = {}): void {
  if (name && opts.force) forced.add(name);
  if (!name || pending.has(name)) return;
  pending.set(
    name,
    setTimeout(() => {
      pending.delete(name);
      const force = forced.delete(name);
      // Never two reconciles of one subnet at once: chain behind the one in flight.
      const previous = running.get(name) ?? Promise.resolve();
      const next = previous
        .then(() => reconcileSubnetByName(name, { forceNads: force }))
        .catch(e => Log.warn(`subnet ${name}: reconcile failed: ${describe(e)}`))
        .finally(() => {
          if (running.get(name) === next) running.delete(name);
        });
      running.set(name, next);
    }, DEBOUNCE_MS),
  );
}
