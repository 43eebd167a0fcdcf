// This admission replica's pools of pre-leased addresses, one per subnet (docs/admission.md; the
// rules are lib/decide/pool.ts). Admission takes a ready lease from memory and answers without an
// API request; the pool is topped up in the background, hand-outs the watcher has not bound
// within a few seconds are recorded on their lease, and revoked or vanished leases leave memory
// as soon as the lease cache shows it.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { Log } from "pepr";
import { MacvlanLease, MacvlanSubnet } from "../../crds/types";
import { ClusterState } from "../cluster-state";
import { Phase } from "../k8s/informer";
import { KubePort, kfcPort } from "../k8s/port";
import { applyWrites, decideAndApply } from "../k8s/apply";
import { describe, isAlreadyExists, isTransient } from "../../lib/k8s/errors";
import { leaseName, macFor } from "../../lib/ipam";
import {
  ANN_POOL_OWNER,
  ReplicaId,
  handedOut,
  isOrphaned,
  isPoolLease,
  isReturnRequested,
  isReturnable,
  ownerValue,
  poolTarget,
  recordWrites,
  renderPoolLease,
  returnRequestWrite,
  staleIncarnationWrites,
  tokenOpens,
} from "../../lib/decide/pool";

/** Tunables (environment variables); MACVLAN_POOL_MAX=0 turns the pools off. */
export const poolSettings = {
  min: Number(process.env.MACVLAN_POOL_MIN ?? 8),
  max: Number(process.env.MACVLAN_POOL_MAX ?? 64),
  /** A hand-out the watcher has not bound by then is recorded on its lease. */
  recordDelayMs: Number(process.env.MACVLAN_POOL_RECORD_DELAY_MS ?? 5000),
  /** Hand-outs counted for sizing the pool. */
  windowMs: 10_000,
  /** A pool without hand-outs for this long returns all its leases (the same as the reserved
   * TTL by default: nothing of a burst is held much longer than its own reservations). */
  idleMs: Number(process.env.MACVLAN_POOL_IDLE_SECONDS ?? 60) * 1000,
  /** Lease creates in flight per subnet, at most. */
  concurrency: 16,
  /** How long a fixed-IP request waits for another replica to return a pool lease. */
  returnWaitMs: Number(process.env.MACVLAN_POOL_RETURN_WAIT_MS ?? 3000),
};

interface Ready {
  lease: MacvlanLease;
  token: string;
}

interface SubnetPool {
  ready: Ready[];
  creating: number;
  handouts: number[];
  lastHandout: number;
}

/**
 * The token of a pool lease this replica made (or tried to) and has not handed out: kept while
 * the lease is ours, so the lease can rejoin the pool whenever the lease cache shows it outside
 * of it (a create that timed out but happened; a relist that briefly lost it). `absentSince`:
 * when the cache last lacked it; the entry is dropped after MINTED_TTL_MS of absence.
 */
interface Minted {
  token: string;
  absentSince?: number;
  /** Being returned (deleted): never ready again; the sweep retries a failed delete. */
  returning?: boolean;
  deleting?: boolean;
}

/** Long enough for any create the API server was still processing to show in the lease watch. */
const MINTED_TTL_MS = 5 * 60_000;

interface HandOut {
  token: string;
  namespace: string;
  pod?: string;
}

const SA_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

export class ReplicaPool {
  readonly #pools = new Map<string, SubnetPool>();
  readonly #pending = new Map<string, HandOut>();
  readonly #minted = new Map<string, Minted>();
  #me?: ReplicaId;
  #port: KubePort = kfcPort;

  constructor(private readonly state: ClusterState) {
    state.leases.onChange((lease, phase) => this.#onLease(lease, phase));
    state.subnets.onChange((subnet, phase, previous) => {
      // Deleting, or its ranges may have changed: ready leases could lie outside the new pool.
      const changed = previous && previous.metadata?.generation !== subnet.metadata?.generation;
      if (phase === "DELETED" || subnet.metadata?.deletionTimestamp || changed)
        void this.drain(subnet.metadata!.name!);
    });
  }

  get enabled(): boolean {
    return !!this.#me;
  }

  /**
   * Enables the pools once this process knows who it is: its own pod (HOSTNAME in the service
   * account's namespace) must exist, since the watcher keeps a replica's pool leases only while
   * that pod lives. Leases an earlier process of this pod left behind are revoked first.
   */
  async start(opts: { identity?: ReplicaId; port?: KubePort } = {}): Promise<boolean> {
    if (opts.port) this.#port = opts.port;
    if (poolSettings.max <= 0) return false;
    const me = opts.identity ?? (await this.#discover());
    if (!me) return false;
    await this.state.start();
    for (const w of staleIncarnationWrites(this.state.leases.list(), me, new Date())) {
      await applyWrites(this.#port, [w]).catch(e =>
        Log.warn(`could not revoke an earlier process's pool lease: ${describe(e)}`),
      );
    }
    this.#me = me;
    // Pools shrink back (and refill) when bursts end; a pool is made on a subnet's first pod.
    setInterval(() => this.#tick(), poolSettings.windowMs).unref();
    Log.info(`pepr-macvlan: address pools on, owner ${ownerValue(me)}`);
    return true;
  }

  async #discover(): Promise<ReplicaId | undefined> {
    const pod = process.env.HOSTNAME;
    let namespace = process.env.POD_NAMESPACE ?? "pepr-system";
    try {
      namespace = readFileSync(SA_NAMESPACE_FILE, "utf8").trim() || namespace;
    } catch {
      // not in a pod: the GET below decides
    }
    const found = pod && (await this.#port.getPod(namespace, pod).catch(() => undefined));
    if (!found) {
      Log.info(
        `pepr-macvlan: address pools off (this process is not pod ${namespace}/${pod ?? "?"}); ` +
          `every admission creates its lease`,
      );
      return undefined;
    }
    return { namespace, pod: pod!, boot: randomBytes(4).toString("hex") };
  }

  #pool(subnet: string): SubnetPool {
    let pool = this.#pools.get(subnet);
    if (!pool)
      this.#pools.set(
        subnet,
        (pool = { ready: [], creating: 0, handouts: [], lastHandout: Date.now() }),
      );
    return pool;
  }

  /** Ours to hand out: still our pool lease (same object), not revoked. */
  #stillOurs(cached: MacvlanLease | undefined, entry: Ready): cached is MacvlanLease {
    return (
      !!cached &&
      cached.metadata?.uid === entry.lease.metadata?.uid &&
      isPoolLease(cached) &&
      !isOrphaned(cached) &&
      cached.metadata?.annotations?.[ANN_POOL_OWNER] === ownerValue(this.#me!)
    );
  }

  /** A ready lease for a pod of `namespace`, or undefined (pools off, empty, subnet deleting). */
  take(subnet: MacvlanSubnet, namespace: string, pod?: string): MacvlanLease | undefined {
    if (!this.#me || subnet.metadata?.deletionTimestamp) return undefined;
    const name = subnet.metadata!.name!;
    const pool = this.#pool(name);
    pool.handouts.push(Date.now());
    pool.lastHandout = Date.now();
    let taken: { cached: MacvlanLease; token: string } | undefined;
    while (!taken && pool.ready.length) {
      const entry = pool.ready.shift()!;
      const cached = this.state.leases.get(entry.lease.metadata!.name!);
      if (this.#stillOurs(cached, entry)) taken = { cached, token: entry.token };
    }
    this.topUp(subnet);
    if (!taken) return undefined;
    const leaseName = taken.cached.metadata!.name!;
    this.#minted.delete(leaseName); // handed out: never ready again
    this.#pending.set(leaseName, { token: taken.token, namespace, pod });
    setTimeout(() => void this.#record(leaseName), poolSettings.recordDelayMs).unref();
    return handedOut(taken.cached, taken.token, namespace);
  }

  /**
   * A fixed IP asked for is held by a pool lease. One of ours that is still ready is returned at
   * once; another replica's owner is asked (ANN_POOL_RETURN_REQUESTED, which it watches) and the
   * lease is awaited gone for up to `waitMs`. Resolves true once the address is free to lease;
   * false when it was handed out meanwhile or the owner did not answer (the request is refused
   * as taken, as for any other holder).
   */
  async reclaim(lease: MacvlanLease, waitMs = poolSettings.returnWaitMs): Promise<boolean> {
    if (!isReturnable(lease)) return false;
    const name = lease.metadata!.name!;
    if (this.#me && lease.metadata?.annotations?.[ANN_POOL_OWNER] === ownerValue(this.#me)) {
      const entry = this.#unready(lease);
      return !!entry && (await this.#delete(entry.lease));
    }
    try {
      if ((await applyWrites(this.#port, [returnRequestWrite(lease, new Date())])) !== "done")
        return false;
    } catch (e) {
      Log.warn(`could not ask for pool lease ${name} back: ${describe(e)}`);
      return false;
    }
    return this.#awaitGone(name, lease.metadata?.uid, waitMs);
  }

  /** Takes a lease out of our ready list (it will not be handed out); the entry, if it was in. */
  #unready(lease: MacvlanLease): Ready | undefined {
    const pool = this.#pools.get(lease.spec?.subnet ?? "");
    const i = pool?.ready.findIndex(r => r.lease.metadata?.name === lease.metadata?.name) ?? -1;
    return i >= 0 ? pool!.ready.splice(i, 1)[0] : undefined;
  }

  #awaitGone(name: string, uid: string | undefined, waitMs: number): Promise<boolean> {
    const gone = () => this.state.leases.get(name)?.metadata?.uid !== uid;
    return new Promise(resolve => {
      if (gone()) return resolve(true);
      const started = Date.now();
      const timer = setInterval(() => {
        if (gone() || Date.now() - started >= waitMs) {
          clearInterval(timer);
          resolve(gone());
        }
      }, 25);
    });
  }

  /** Creates pool leases up to the target in the background; trims what is over it. */
  topUp(subnet: MacvlanSubnet): void {
    if (!this.#me || subnet.metadata?.deletionTimestamp) return;
    const pool = this.#pool(subnet.metadata!.name!);
    const now = Date.now();
    pool.handouts = pool.handouts.filter(t => now - t < poolSettings.windowMs);
    const { fill, keep } = poolTarget({
      free: this.state.allocator(subnet).free,
      recentHandouts: pool.handouts.length,
      idle: now - pool.lastHandout > poolSettings.idleMs,
      min: poolSettings.min,
      max: poolSettings.max,
    });
    while (pool.ready.length + pool.creating < fill && pool.creating < poolSettings.concurrency) {
      pool.creating++;
      void this.#createOne(subnet).finally(() => {
        pool.creating--;
        this.topUp(subnet);
      });
    }
    while (pool.ready.length > keep) void this.#delete(pool.ready.pop()!.lease);
  }

  #tick(): void {
    this.#sweepMinted(Date.now());
    for (const name of this.#pools.keys()) {
      const subnet = this.state.subnets.get(name);
      if (subnet) this.topUp(subnet);
    }
  }

  /** One pool lease: the next candidate address, created (the name is the lock). */
  async #createOne(subnet: MacvlanSubnet): Promise<void> {
    const name = subnet.metadata!.name!;
    const allocator = this.state.allocator(subnet);
    for (let attempt = 0; attempt < 8; attempt++) {
      let ip: string;
      try {
        ip = allocator.next(Date.now());
      } catch {
        return; // exhausted: admission's own path reports it
      }
      const token = randomBytes(16).toString("hex");
      const lease = leaseName(name, ip);
      this.#minted.set(lease, { token });
      try {
        const created = await this.#port.createLease(
          renderPoolLease(name, ip, macFor(name, ip), this.#me!, token),
        );
        this.state.leases.upsert(created);
        this.#adopt(created);
        return;
      } catch (e) {
        if (isAlreadyExists(e)) {
          // Someone holds it: stays marked, try the next. (Were it our own earlier attempt, its
          // commitment is our token's and the adoption below or the sweep takes it in.)
          const seen = this.state.leases.get(lease);
          if (seen) this.#adopt(seen);
          continue;
        }
        Log.warn(`could not pre-lease an address of MacvlanSubnet ${name}: ${describe(e)}`);
        // Timed out or the answer lost: the lease may exist all the same, ours alone (only we
        // have its token). It joins the pool when the lease cache shows it, so it is handed out
        // or returned like any other, never left behind while this replica lives.
        if (!isTransient(e)) this.#minted.delete(lease);
        const seen = this.state.leases.get(lease);
        if (seen) this.#adopt(seen);
        else allocator.forget(ip);
        return;
      }
    }
  }

  /**
   * A lease we minted, as the cache shows it: ours (pool lease, our owner, the commitment of our
   * token, not revoked) and not handed out, so it is (again) ready; otherwise it is not ours to
   * keep track of.
   */
  #adopt(lease: MacvlanLease): void {
    const name = lease.metadata!.name!;
    const minted = this.#minted.get(name);
    if (!minted || !this.#me) return;
    const ours =
      tokenOpens(lease, minted.token) &&
      !isOrphaned(lease) &&
      lease.metadata?.annotations?.[ANN_POOL_OWNER] === ownerValue(this.#me);
    if (!ours || this.#pending.has(name)) {
      this.#minted.delete(name);
      return;
    }
    minted.absentSince = undefined;
    if (minted.returning) return;
    const pool = this.#pool(lease.spec!.subnet);
    if (!pool.ready.some(r => r.lease.metadata?.name === name))
      pool.ready.push({ lease, token: minted.token });
  }

  /** Re-adopts minted leases the cache shows outside the pool; forgets long-absent ones. */
  #sweepMinted(now: number): void {
    for (const [name, minted] of this.#minted) {
      const cached = this.state.leases.get(name);
      if (cached && minted.returning && !minted.deleting) void this.#delete(cached);
      else if (cached) this.#adopt(cached);
      else if (minted.absentSince === undefined) minted.absentSince = now;
      else if (now - minted.absentSince > MINTED_TTL_MS) this.#minted.delete(name);
    }
  }

  #onLease(lease: MacvlanLease, phase: Phase): void {
    const name = lease.metadata!.name!;
    if (phase !== "DELETED") this.#adopt(lease);
    if (phase === "DELETED" || !isPoolLease(lease)) this.#pending.delete(name); // bound or gone
    const pool = this.#pools.get(lease.spec?.subnet ?? "");
    if (!pool || !this.#me) return;
    const i = pool.ready.findIndex(r => r.lease.metadata?.name === name);
    if (i < 0) return;
    if (phase !== "DELETED" && this.#stillOurs(lease, pool.ready[i]) && isReturnRequested(lease)) {
      // Another replica was asked for this address as a fixed IP: not handed out, so give it.
      void this.#delete(pool.ready.splice(i, 1)[0].lease);
    } else if (phase === "DELETED" || !this.#stillOurs(lease, pool.ready[i])) {
      pool.ready.splice(i, 1);
    }
  }

  /** A hand-out the watcher has not bound yet becomes an ordinary Reserved lease. */
  async #record(name: string, attempt = 0): Promise<void> {
    const hand = this.#pending.get(name);
    if (!hand) return;
    try {
      await decideAndApply(this.#port, async () => {
        const fresh = await this.#port.getLease(name);
        const ours = fresh?.metadata?.annotations?.[ANN_POOL_OWNER] === ownerValue(this.#me!);
        return fresh && ours ? recordWrites(fresh, hand, new Date()) : [];
      });
      this.#pending.delete(name);
    } catch (e) {
      // Until recorded (or bound) the lease stays ours: never give up, back off.
      const delay = Math.min(30_000, 1000 * 2 ** attempt);
      Log.warn(`could not record hand-out of lease ${name} (${describe(e)}); retry in ${delay} ms`);
      setTimeout(() => void this.#record(name, attempt + 1), delay).unref();
    }
  }

  /** Deletes one of our pool leases (compare-and-swap); true once it is gone. */
  async #delete(lease: MacvlanLease): Promise<boolean> {
    const minted = this.#minted.get(lease.metadata!.name!);
    // Never ready again from here on, even if this delete fails: the sweep retries it.
    if (minted) Object.assign(minted, { returning: true, deleting: true });
    try {
      const gone = await this.#deleteOnce(lease);
      if (gone) this.#minted.delete(lease.metadata!.name!);
      return gone;
    } finally {
      if (minted) minted.deleting = false;
    }
  }

  async #deleteOnce(lease: MacvlanLease): Promise<boolean> {
    const cached = this.state.leases.get(lease.metadata!.name!) ?? lease;
    if (!isPoolLease(cached)) return false;
    const lock = { name: lease.metadata!.name!, uid: cached.metadata?.uid };
    const rv = { resourceVersion: cached.metadata?.resourceVersion };
    try {
      const result = await applyWrites(this.#port, [
        { op: "deleteLease", lease: { ...lock, ...rv } },
      ]);
      if (result !== "done") return false;
      this.state.leases.forget(cached);
      return true;
    } catch (e) {
      Log.warn(`could not return pool lease ${lock.name}: ${describe(e)}`);
      return false;
    }
  }

  /** Returns a subnet's ready leases (it is being deleted); the watcher reclaims the rest. */
  async drain(subnet: string): Promise<void> {
    const pool = this.#pools.get(subnet);
    if (!pool) return;
    const ready = pool.ready.splice(0);
    await Promise.all(ready.map(r => this.#delete(r.lease)));
  }
}
