// The one place that reads how this process was started (Pepr sets these variables).
export type Role = "build" | "admission" | "watcher";

export function processRole(env: NodeJS.ProcessEnv = process.env): Role {
  if (env.PEPR_MODE === "build") return "build";
  return env.PEPR_WATCH_MODE === "true" ? "watcher" : "admission";
}

/** Tunables, each with the environment variable that overrides it. */
export const settings = {
  /** A Reserved lease that no pod claims within this time is reclaimed. */
  reservedTtlSeconds: Number(process.env.MACVLAN_RESERVED_TTL_SECONDS ?? 60),
  /**
   * A pool lease older than this is revoked even while its replica lives (a backstop: a lease its
   * owner lost track of, e.g. with a stale cache, cannot stay forever); revocation is safe at any
   * time (docs/admission.md), so a lease still ready is simply replaced.
   */
  poolMaxAgeSeconds: Number(process.env.MACVLAN_POOL_MAX_AGE_SECONDS ?? 600),
  /** How often the watcher repairs drift between leases, pods, NADs and status. */
  resyncSeconds: Number(process.env.MACVLAN_RESYNC_SECONDS ?? 60),
  /** Lease create attempts per pod before admission gives up on a busy subnet. */
  maxAllocationAttempts: Number(process.env.MACVLAN_MAX_ALLOCATION_ATTEMPTS ?? 64),
  /**
   * Where admission starts looking for a free address: "random" (default) so that replicas
   * admitting a burst rarely propose the same address; "lowest" packs the pool from the bottom.
   */
  scanStart: (process.env.MACVLAN_SCAN_START === "lowest" ? "lowest" : "random") as
    | "lowest"
    | "random",
};
