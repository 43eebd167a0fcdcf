// Carries a decision's writes out through the port, in order. A lease's own writes chain: after
// our patch, the next write of that lease tests the resourceVersion our patch produced. A failed
// precondition stops the rest and reports a conflict: the caller reads afresh and decides again.
import { Log } from "pepr";
import { Write } from "../../lib/decide/writes";
import { describe, isAlreadyExists, isConflict } from "../../lib/k8s/errors";
import { KubePort } from "./port";
import { recordConflict } from "../metrics";

export type ApplyResult = "done" | "conflict";

const subjectOf = (w: Write) =>
  w.op === "createLease" ? w.lease.metadata?.name : w.op === "event" ? w.target.name : w.lease.name;

export async function applyWrites(port: KubePort, writes: Write[]): Promise<ApplyResult> {
  const latest = new Map<string, string | undefined>();
  const lockOf = (lock: { name: string; uid?: string; resourceVersion?: string }) =>
    latest.has(lock.name) ? { ...lock, resourceVersion: latest.get(lock.name) } : lock;
  for (const w of writes) {
    try {
      switch (w.op) {
        case "createLease": {
          const created = await port.createLease(w.lease);
          latest.set(created.metadata!.name!, created.metadata?.resourceVersion);
          if (w.status) {
            const done = await port.setLeaseStatus(
              {
                name: created.metadata!.name!,
                uid: created.metadata?.uid,
                resourceVersion: created.metadata?.resourceVersion,
              },
              w.status,
            );
            latest.set(created.metadata!.name!, done.metadata?.resourceVersion);
          }
          break;
        }
        case "patchLease": {
          const done = await port.patchLease(lockOf(w.lease), w.spec, w.annotations, w.labels);
          latest.set(w.lease.name, done.metadata?.resourceVersion);
          break;
        }
        case "setLeaseStatus": {
          const done = await port.setLeaseStatus(lockOf(w.lease), w.status);
          latest.set(w.lease.name, done.metadata?.resourceVersion);
          break;
        }
        case "deleteLease":
          await port.deleteLease(lockOf(w.lease));
          break;
        case "event":
          await port.event(w.target, w.type, w.reason, w.message);
          break;
      }
    } catch (e) {
      if (isConflict(e) || (w.op === "createLease" && isAlreadyExists(e))) {
        Log.info(`${w.op} ${subjectOf(w)}: changed meanwhile (${describe(e)}); deciding again`);
        recordConflict(w.op);
        return "conflict";
      }
      throw e;
    }
  }
  return "done";
}

/** Decides and applies, re-reading and deciding again on a conflict, a bounded number of times. */
export async function decideAndApply(
  port: KubePort,
  decide: () => Promise<Write[]>,
  attempts = 4,
): Promise<ApplyResult> {
  for (let i = 0; i < attempts; i++) {
    if ((await applyWrites(port, await decide())) === "done") return "done";
  }
  return "conflict";
}
