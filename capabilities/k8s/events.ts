// Kubernetes Events, the user-visible log of what the product did (allocated, denied, released, repaired).
import { Log } from "pepr";
import { describe } from "../../lib/k8s/errors";
import { EventTarget } from "../../lib/decide/writes";
import { kubeRequest, paths } from "./transport";

// The same event for the same object within this window is recorded once: a poisoned object
// met by every resync must not flood the API server.
const REPEAT_WINDOW_MS = 10 * 60_000;
const recent = new Map<string, number>();

function seenRecently(key: string, now: number): boolean {
  const at = recent.get(key);
  if (at !== undefined && now - at < REPEAT_WINDOW_MS) return true;
  if (recent.size > 10_000) recent.clear();
  recent.set(key, now);
  return false;
}

export type { EventTarget };

const COMPONENT = "pepr-macvlan";

export async function emitEvent(
  target: EventTarget,
  type: "Normal" | "Warning",
  reason: string,
  message: string,
): Promise<void> {
  const key = `${target.kind}/${target.namespace ?? ""}/${target.name}/${target.uid ?? ""}/${reason}/${message}`;
  if (seenRecently(key, Date.now())) return;
  const now = new Date().toISOString();
  // Events of cluster-scoped objects live in "default", as kubectl describe expects.
  const namespace = target.namespace ?? "default";
  try {
    await kubeRequest("POST", paths.core("events", namespace), {
      body: {
        apiVersion: "v1",
        kind: "Event",
        metadata: { generateName: `${target.name}.`, namespace },
        involvedObject: { ...target, namespace: target.namespace },
        type,
        reason,
        message: message.slice(0, 1024),
        source: { component: COMPONENT },
        reportingComponent: COMPONENT,
        reportingInstance: process.env.HOSTNAME ?? COMPONENT,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      },
    });
  } catch (e) {
    // An event is best effort: never let it fail the work it reports on.
    Log.warn(`could not record event ${reason} on ${target.kind}/${target.name}: ${describe(e)}`);
  }
}
