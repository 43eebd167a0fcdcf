// A read-only cache of one kind fed by a KFC list+watch. Caches speed decisions up; they are never
// the source of truth: creates (leases) and compare-and-swap patches are the locks.
import { GenericClass, K8s, KubernetesObject, WatchCfg } from "kubernetes-fluent-client";
import { Log } from "pepr";
import { describe } from "../../lib/k8s/errors";

/** KFC's watch phases we act on. */
export type Phase = "ADDED" | "MODIFIED" | "DELETED";

export type InformerHandler<K> = (obj: K, phase: Phase, previous?: K) => void;

export const keyOf = (o: KubernetesObject) =>
  o.metadata?.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata!.name!;

export class Informer<T extends GenericClass, K extends KubernetesObject = InstanceType<T>> {
  readonly #items = new Map<string, K>();
  readonly #handlers: InformerHandler<K>[] = [];
  #started?: Promise<void>;

  constructor(
    private readonly model: T,
    private readonly filters: {
      labels?: Record<string, string>;
      fields?: Record<string, string>;
    } = {},
    private readonly watchCfg: WatchCfg = { resyncDelaySec: 1, lastSeenLimitSeconds: 300 },
  ) {}

  onChange(handler: InformerHandler<K>): this {
    this.#handlers.push(handler);
    return this;
  }

  /** Starts once; resolves when the initial list has been applied. */
  start(): Promise<void> {
    this.#started ??= this.#start();
    return this.#started;
  }

  /** Lists and watches until it succeeds; never rejects (admission waits on it). */
  async #start(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#listAndWatch();
        return;
      } catch (e) {
        const delay = Math.min(10_000, 500 * 2 ** attempt);
        Log.warn(
          `cache of ${this.model.name}: list/watch failed (${describe(e)}); retrying in ${delay} ms`,
        );
        await new Promise(r => setTimeout(r, delay));
      }
    }
  }

  async #listAndWatch(): Promise<void> {
    // KFC types field selectors by the model's keys; ours come as plain strings.
    type Query = { WithLabel(k: string, v: string): Query; WithField(k: string, v: string): Query };
    let query = K8s(this.model) as unknown as Query;
    for (const [k, v] of Object.entries(this.filters.labels ?? {})) query = query.WithLabel(k, v);
    for (const [k, v] of Object.entries(this.filters.fields ?? {})) query = query.WithField(k, v);
    const q = query as unknown as ReturnType<typeof K8s<T, K>>;
    // Seed from a plain list so callers can rely on the cache once start() resolves; on a
    // relist, what vanished meanwhile is reported as deleted.
    const list = await q.Get();
    const seen = new Set<string>();
    for (const item of list.items) {
      seen.add(keyOf(item));
      this.#apply(item as K, this.#items.has(keyOf(item)) ? "MODIFIED" : "ADDED");
    }
    for (const [key, item] of this.#items) if (!seen.has(key)) this.#apply(item, "DELETED");
    const watcher = q.Watch((obj, phase) => {
      if (phase === "ADDED" || phase === "MODIFIED" || phase === "DELETED")
        this.#apply(obj as K, phase);
    }, this.watchCfg);
    watcher.events.on("give_up", (err: unknown) => {
      // KFC stops after repeated failures: start over with a fresh list rather than go stale.
      Log.error(`watch of ${this.model.name} gave up (${describe(err)}); relisting`);
      watcher.close();
      void this.#start();
    });
    await watcher.start();
  }

  #apply(obj: K, phase: Phase): void {
    const key = keyOf(obj);
    const previous = this.#items.get(key);
    // Watch events can arrive out of order with our own writes: ignore stale replays.
    if (previous && phase !== "DELETED" && isOlder(obj, previous)) return;
    if (phase === "DELETED") this.#items.delete(key);
    else this.#items.set(key, obj);
    for (const h of this.#handlers) h(obj, phase, previous);
  }

  get(key: string): K | undefined {
    return this.#items.get(key);
  }

  /** Records an object we just wrote, so our own reads see it before the watch echoes it. */
  upsert(obj: K): void {
    this.#apply(obj, this.#items.has(keyOf(obj)) ? "MODIFIED" : "ADDED");
  }

  forget(obj: K): void {
    this.#apply(obj, "DELETED");
  }

  list(): K[] {
    return [...this.#items.values()];
  }
}

function isOlder(a: KubernetesObject, b: KubernetesObject): boolean {
  if (a.metadata?.uid !== b.metadata?.uid) return false;
  const ra = Number(a.metadata?.resourceVersion);
  const rb = Number(b.metadata?.resourceVersion);
  return Number.isFinite(ra) && Number.isFinite(rb) && ra < rb;
}
