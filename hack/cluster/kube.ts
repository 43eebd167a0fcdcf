// A small Kubernetes REST client for the cluster tooling and the tests:
// client-certificate or token auth from a kubeconfig, JSON requests, and list+watch with
// resourceVersion bookkeeping (relist on 410 Gone, reconnect with backoff).
import * as fs from "node:fs";
import * as https from "node:https";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: Array<Record<string, unknown>>;
  finalizers?: string[];
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  spec?: any;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  status?: any;
  [key: string]: unknown;
}

export interface KubeList<T = KubeObject> {
  apiVersion?: string;
  kind?: string;
  metadata: { resourceVersion?: string; continue?: string };
  items: T[];
}

export interface WatchEvent<T = KubeObject> {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: T;
}

/** An error answer from the apiserver (or a transport failure, status 0). */
export class KubeError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly body?: unknown,
  ) {
    super(message);
    this.name = "KubeError";
  }
}

export const isNotFound = (e: unknown) => e instanceof KubeError && e.status === 404;
export const isConflict = (e: unknown) => e instanceof KubeError && e.status === 409;
export const isAlreadyExists = (e: unknown) =>
  e instanceof KubeError && e.status === 409 && e.reason === "AlreadyExists";

export type PatchType = "merge" | "strategic" | "json" | "apply";
const PATCH_CONTENT_TYPE: Record<PatchType, string> = {
  merge: "application/merge-patch+json",
  strategic: "application/strategic-merge-patch+json",
  json: "application/json-patch+json",
  apply: "application/apply-patch+yaml",
};

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | boolean | undefined>;
  contentType?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface KubeConnection {
  server: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  token?: string;
  namespace?: string;
}

function fromDataOrFile(base: string, data?: string, file?: string): Buffer | undefined {
  if (data) return Buffer.from(data, "base64");
  if (file) return fs.readFileSync(path.resolve(base, file));
  return undefined;
}

/** Reads the current context of a kubeconfig file (YAML or JSON). */
export function loadKubeconfig(file: string): KubeConnection {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const kc = parseYaml(fs.readFileSync(file, "utf8")) as any;
  const base = path.dirname(file);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const byName = (list: any[] | undefined, name: string) => (list ?? []).find(x => x.name === name);
  const ctx = byName(kc.contexts, kc["current-context"])?.context ?? kc.contexts?.[0]?.context;
  if (!ctx) throw new Error(`${file}: no context`);
  const cluster = byName(kc.clusters, ctx.cluster)?.cluster;
  const user = byName(kc.users, ctx.user)?.user ?? {};
  if (!cluster) throw new Error(`${file}: cluster ${ctx.cluster} not found`);
  let token: string | undefined = user.token;
  if (!token && user.tokenFile)
    token = fs.readFileSync(path.resolve(base, user.tokenFile), "utf8").trim();
  return {
    server: String(cluster.server).replace(/\/+$/, ""),
    ca: fromDataOrFile(
      base,
      cluster["certificate-authority-data"],
      cluster["certificate-authority"],
    ),
    cert: fromDataOrFile(base, user["client-certificate-data"], user["client-certificate"]),
    key: fromDataOrFile(base, user["client-key-data"], user["client-key"]),
    token,
    namespace: ctx.namespace,
  };
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>(resolve => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
  });

export class Kube {
  private readonly agent: https.Agent;
  private readonly url: URL;

  constructor(readonly conn: KubeConnection) {
    this.url = new URL(conn.server);
    this.agent = new https.Agent({
      ca: conn.ca,
      cert: conn.cert,
      key: conn.key,
      keepAlive: true,
      maxSockets: 32,
    });
  }

  static fromKubeconfig(file: string): Kube {
    return new Kube(loadKubeconfig(file));
  }

  /** Closes idle keep-alive sockets (lets a short-lived process exit promptly). */
  close(): void {
    this.agent.destroy();
  }

  private buildPath(p: string, query?: RequestOptions["query"]): string {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) qs.set(k, String(v));
    const s = qs.toString();
    return s ? `${p}${p.includes("?") ? "&" : "?"}${s}` : p;
  }

  private open(
    method: string,
    p: string,
    o: RequestOptions,
    onResponse: (res: import("node:http").IncomingMessage) => void,
  ) {
    const body =
      o.body === undefined
        ? undefined
        : typeof o.body === "string"
          ? o.body
          : JSON.stringify(o.body);
    const headers: Record<string, string> = { Accept: "application/json" };
    if (body !== undefined) {
      headers["Content-Type"] = o.contentType ?? "application/json";
      headers["Content-Length"] = String(Buffer.byteLength(body));
    }
    if (this.conn.token) headers.Authorization = `Bearer ${this.conn.token}`;
    const req = https.request(
      {
        protocol: this.url.protocol,
        hostname: this.url.hostname,
        port: this.url.port || 443,
        path: this.buildPath(p, o.query),
        method,
        headers,
        agent: this.agent,
        signal: o.signal,
      },
      onResponse,
    );
    if (body !== undefined) req.write(body);
    req.end();
    return req;
  }

  /** One JSON request. Throws KubeError for non-2xx answers and transport failures (status 0). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  request<T = any>(method: string, p: string, o: RequestOptions = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const req = this.open(method, p, o, res => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", err => reject(new KubeError(0, "Transport", String(err))));
        res.on("end", () => {
          if (timer) clearTimeout(timer);
          const text = Buffer.concat(chunks).toString("utf8");
          let json: unknown = undefined;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve(json as T);
          // eslint-disable-next-line @typescript-eslint/no-explicit-any
          const st = json as any;
          reject(
            new KubeError(
              status,
              st?.reason ?? String(status),
              `${method} ${p}: ${status} ${st?.message ?? text.slice(0, 500)}`,
              json,
            ),
          );
        });
      });
      if (o.timeoutMs) {
        timer = setTimeout(
          () => req.destroy(new Error(`timeout after ${o.timeoutMs} ms`)),
          o.timeoutMs,
        );
      }
      req.on("error", err => {
        if (timer) clearTimeout(timer);
        reject(new KubeError(0, "Transport", `${method} ${p}: ${err.message}`));
      });
    });
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  get<T = any>(p: string, query?: RequestOptions["query"]): Promise<T> {
    return this.request<T>("GET", p, { query, timeoutMs: 30000 });
  }

  /** GET that answers undefined for 404. */
  async getOrUndefined<T = KubeObject>(p: string): Promise<T | undefined> {
    try {
      return await this.get<T>(p);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  create<T = any>(p: string, body: unknown): Promise<T> {
    return this.request<T>("POST", p, { body, timeoutMs: 30000 });
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  put<T = any>(p: string, body: unknown): Promise<T> {
    return this.request<T>("PUT", p, { body, timeoutMs: 30000 });
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  patch<T = any>(
    p: string,
    body: unknown,
    type: PatchType = "merge",
    query?: RequestOptions["query"],
  ): Promise<T> {
    return this.request<T>("PATCH", p, {
      body,
      contentType: PATCH_CONTENT_TYPE[type],
      query,
      timeoutMs: 30000,
    });
  }

  /** Server-side apply of one object (fieldManager required). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  apply<T = any>(p: string, obj: unknown, fieldManager: string, force = true): Promise<T> {
    return this.patch<T>(p, obj, "apply", { fieldManager, force });
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  delete<T = any>(p: string, body?: unknown, query?: RequestOptions["query"]): Promise<T> {
    return this.request<T>("DELETE", p, { body, query, timeoutMs: 30000 });
  }

  /**
   * One watch request from `resourceVersion`; calls onEvent per event and resolves when the
   * server closes the stream. Rejects on HTTP errors (KubeError) and transport failures.
   */
  watchOnce<T = KubeObject>(
    p: string,
    query: RequestOptions["query"],
    onEvent: (ev: WatchEvent<T>) => void,
    signal?: AbortSignal,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const req = this.open(
        "GET",
        p,
        { query: { ...query, watch: 1, allowWatchBookmarks: true }, signal },
        res => {
          if ((res.statusCode ?? 0) >= 300) {
            let text = "";
            res.setEncoding("utf8").on("data", d => (text += d));
            res.on("end", () =>
              reject(
                new KubeError(
                  res.statusCode ?? 0,
                  "WatchFailed",
                  `watch ${p}: ${res.statusCode} ${text.slice(0, 300)}`,
                ),
              ),
            );
            return;
          }
          let buf = "";
          res.setEncoding("utf8");
          res.on("data", (d: string) => {
            buf += d;
            let nl: number;
            while ((nl = buf.indexOf("\n")) >= 0) {
              const line = buf.slice(0, nl).trim();
              buf = buf.slice(nl + 1);
              if (!line) continue;
              try {
                onEvent(JSON.parse(line) as WatchEvent<T>);
              } catch (e) {
                req.destroy(e instanceof Error ? e : new Error(String(e)));
              }
            }
          });
          res.on("end", () => resolve());
          res.on("error", err => reject(new KubeError(0, "Transport", String(err))));
        },
      );
      req.on("error", err => {
        if (signal?.aborted) resolve();
        else reject(new KubeError(0, "Transport", `watch ${p}: ${err.message}`));
      });
    });
  }
}

export interface InformerHandlers<T extends KubeObject> {
  /** After every (re)list, with the complete current set. */
  onSync(items: T[]): void;
  onEvent(type: "ADDED" | "MODIFIED" | "DELETED", obj: T): void;
  onError?(err: unknown): void;
}

/**
 * List+watch loop on a collection path (e.g. /api/v1/pods) with optional selectors. Relists on
 * 410 Gone and after errors (with backoff, capped at 10 s); stops when the signal aborts.
 */
export async function runInformer<T extends KubeObject>(
  kube: Kube,
  collection: string,
  selectors: { fieldSelector?: string; labelSelector?: string },
  handlers: InformerHandlers<T>,
  signal: AbortSignal,
): Promise<void> {
  let backoff = 250;
  while (!signal.aborted) {
    try {
      const list = await kube.get<KubeList<T>>(collection, { ...selectors });
      handlers.onSync(list.items ?? []);
      let rv = list.metadata.resourceVersion;
      backoff = 250;
      for (;;) {
        if (signal.aborted) return;
        let gone = false;
        await kube.watchOnce<T>(
          collection,
          {
            ...selectors,
            resourceVersion: rv,
            timeoutSeconds: 240 + Math.floor(Math.random() * 60),
          },
          ev => {
            if (ev.type === "ERROR") {
              // eslint-disable-next-line @typescript-eslint/no-explicit-any
              const st = ev.object as any;
              if (st?.code === 410) gone = true;
              else
                throw new KubeError(
                  st?.code ?? 0,
                  st?.reason ?? "WatchError",
                  st?.message ?? "watch error",
                );
              return;
            }
            const newRv = ev.object?.metadata?.resourceVersion;
            if (newRv) rv = newRv;
            if (ev.type === "BOOKMARK") return;
            handlers.onEvent(ev.type, ev.object);
          },
          signal,
        );
        if (gone) break; // relist
      }
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof KubeError && err.status === 410) {
        continue;
      }
      handlers.onError?.(err);
      await sleep(backoff, signal);
      backoff = Math.min(backoff * 2, 10000);
    }
  }
}

export { sleep };
