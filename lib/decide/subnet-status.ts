// A subnet's status, counted from its leases by the IPAM engine (pure): total, allocated, free
// and the Ready condition with a reason a user can act on.
import { Condition, MacvlanLease, MacvlanSubnet, MacvlanSubnetStatus } from "../../crds/types";
import { describe } from "../k8s/errors";
import { allocatorFromLeases } from "./allocators";
import { isConflictLease } from "./conflicts";

/** `now` stamps a changed Ready condition's lastTransitionTime. */
export function countStatus(
  subnet: MacvlanSubnet,
  leases: MacvlanLease[],
  now: Date = new Date(),
): MacvlanSubnetStatus {
  const generation = subnet.metadata?.generation;
  let total = 0n;
  let allocated = 0;
  let free = 0n;
  let conflicts = 0;
  let problem: string | undefined;
  let outside: string[] = [];
  try {
    // The engine's counts: leases outside the usable set (after a spec change) are reported,
    // not counted, so allocated + free == total always holds.
    const allocator = allocatorFromLeases(subnet, leases);
    ({ total, allocated, free } = allocator);
    outside = allocator.outsideIps();
    // Conflict leases are held like allocated ones, but counted apart (design.md §2).
    const out = new Set(outside);
    conflicts = leases.filter(l => isConflictLease(l) && !out.has(l.spec?.ip ?? "")).length;
    allocated -= conflicts;
  } catch (e) {
    problem = describe(e);
  }
  const conflictNote = conflicts ? `; ${conflicts} in use on the LAN by other hosts` : "";
  const outsideNote = outside.length
    ? `; ${outside.length} lease(s) outside the pool (${outside.slice(0, 3).join(", ")})`
    : "";
  const ready: Omit<Condition, "lastTransitionTime"> = problem
    ? {
        type: "Ready",
        status: "False",
        reason: "InvalidSpec",
        message: problem,
        observedGeneration: generation,
      }
    : free === 0n
      ? {
          type: "Ready",
          status: "False",
          reason: "Exhausted",
          message: `all ${total} addresses are leased: grow spec.ranges or spec.cidr`,
          observedGeneration: generation,
        }
      : {
          type: "Ready",
          status: "True",
          reason: "Available",
          message: `${free} of ${total} addresses free${conflictNote}${outsideNote}`,
          observedGeneration: generation,
        };
  const previous = subnet.status?.conditions?.find(c => c.type === "Ready");
  const lastTransitionTime =
    previous && previous.status === ready.status ? previous.lastTransitionTime : now.toISOString();
  return {
    observedGeneration: generation,
    total: total.toString(),
    allocated,
    free: free.toString(),
    conflicts,
    conditions: [{ ...ready, lastTransitionTime }],
  };
}
