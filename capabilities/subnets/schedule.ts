// Coalesces bursts of lease and namespace changes into one subnet reconcile per subnet.
import { Log } from "pepr";
import { reconcileSubnetByName } from "./reconcile";
import { describe } from "../k8s/errors";

const pending = new Map<string, NodeJS.Timeout>();
const running = new Map<string, Promise<void>>();
const DEBOUNCE_MS = 1000;

export function scheduleSubnetReconcile(name: string): void {
  if (!name || pending.has(name)) return;
  pending.set(
    name,
    setTimeout(() => {
      pending.delete(name);
      // Never two reconciles of one subnet at once: chain behind the one in flight.
      const previous = running.get(name) ?? Promise.resolve();
      const next = previous
        .then(() => reconcileSubnetByName(name))
        .catch(e => Log.warn(`subnet ${name}: reconcile failed: ${describe(e)}`))
        .finally(() => {
          if (running.get(name) === next) running.delete(name);
        });
      running.set(name, next);
    }, DEBOUNCE_MS),
  );
}
