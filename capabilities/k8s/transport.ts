// One keep-alive connection pool to the API server for every request the port makes.
//
// KFC 3.11.6 builds its request options per call (`k8sCfg` in dist/fluent/utils.js): it loads the
// kubeconfig from disk and creates a new undici Agent every time, so every call opens a fresh TCP
// and TLS connection (bench/transport.bench.ts measures what that costs) and leaves the idle socket
// behind. We keep KFC as the client (its config loading, credentials, TLS setup and fetch) but call
// `k8sCfg` once and reuse its dispatcher; credentials are refreshed every minute (projected
// service-account tokens rotate) and the old pool is closed once its requests are done.
import { fetch } from "kubernetes-fluent-client";
import { k8sCfg } from "kubernetes-fluent-client/dist/fluent/utils.js";
import { FetchMethods } from "kubernetes-fluent-client/dist/fluent/shared-types.js";
import { Log } from "pepr";
import { describe } from "../../lib/k8s/errors";
import { ADMISSION_RETRY, RECONCILE_RETRY, RetryPolicy, retrying } from "../../lib/k8s/retry";
import { processRole } from "../../lib/mode";

export type Method = "GET" | "POST" | "PATCH" | "DELETE";

type FetchInit = NonNullable<Parameters<typeof fetch>[1]>;

interface Connection {
  serverUrl: string;
  headers: Record<string, string>;
  dispatcher: { close(): Promise<void> };
  at: number;
}

const REFRESH_MS = 60_000;
let current: Promise<Connection> | undefined;
let stats = { requests: 0, pools: 0, retries: 0 };

async function open(): Promise<Connection> {
  const { opts, serverUrl } = await k8sCfg(FetchMethods.GET);
  stats.pools++;
  const init = opts as unknown as {
    headers: Record<string, string>;
    dispatcher: Connection["dispatcher"];
  };
  return {
    serverUrl: String(serverUrl),
    headers: init.headers,
    dispatcher: init.dispatcher,
    at: Date.now(),
  };
}

async function connection(): Promise<Connection> {
  const conn = current && (await current.catch(() => undefined));
  if (conn && Date.now() - conn.at < REFRESH_MS) return conn;
  const next = open();
  current = next;
  next.catch(() => (current = undefined)); // a failed open is retried by the next request
  if (conn) void next.then(() => conn.dispatcher.close().catch(() => undefined));
  return next;
}

export interface RequestOptions {
  body?: unknown;
  /** Content type of the body; JSON by default. */
  contentType?: string;
  query?: Record<string, string>;
  /** How transient failures are retried (default: the process's policy); false: one attempt. */
  retry?: RetryPolicy | false;
  /** Told about each retry (a create uses it to know an earlier attempt may have landed). */
  onRetry?: (error: unknown) => void;
}

/** Admission answers within the webhook timeout; the watcher can afford to wait longer. */
export const defaultRetry = (): RetryPolicy =>
  processRole() === "watcher" ? RECONCILE_RETRY : ADMISSION_RETRY;

/**
 * One API request on the shared pool, retried on transient failures (lib/k8s/retry.ts) with a
 * timeout per attempt. Failures throw what KFC throws (`{status, data, ...}`, a transport failure
 * or timeout as status 400 or 23 with `e`), so lib/k8s/errors.ts reads both alike.
 */
export function kubeRequest<T>(
  method: Method,
  path: string,
  options: RequestOptions = {},
): Promise<T> {
  const policy = options.retry === undefined ? defaultRetry() : options.retry;
  if (!policy) return attempt<T>(method, path, options);
  return retrying(policy, timeoutMs => attempt<T>(method, path, options, timeoutMs), {
    onRetry: (e, n, delay) => {
      stats.retries++;
      options.onRetry?.(e);
      Log.warn(`${method} ${path}: ${describe(e)} (attempt ${n}; again in ${delay} ms)`);
    },
  });
}

async function attempt<T>(
  method: Method,
  path: string,
  options: RequestOptions,
  timeoutMs?: number,
): Promise<T> {
  const conn = await connection();
  const url = new URL(path, conn.serverUrl);
  for (const [k, v] of Object.entries(options.query ?? {})) url.searchParams.set(k, v);
  const init = {
    method,
    dispatcher: conn.dispatcher,
    headers: { ...conn.headers, "Content-Type": options.contentType ?? "application/json" },
    ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
    ...(timeoutMs ? { signal: AbortSignal.timeout(timeoutMs) } : {}),
  } as unknown as FetchInit;
  stats.requests++;
  const resp = await fetch<T>(url, init);
  if (resp.ok) return resp.data;
  throw resp;
}

/** Requests made, retries and connection pools opened since start (bench and tests read them). */
export function transportStats(): { requests: number; pools: number; retries: number } {
  return { ...stats };
}

/** Closes the pool (tests, benchmarks); the next request opens a new one. */
export async function closeTransport(): Promise<void> {
  const conn = current && (await current.catch(() => undefined));
  current = undefined;
  stats = { requests: 0, pools: 0, retries: 0 };
  await conn?.dispatcher.close().catch(() => undefined);
}

/** API paths of the objects the port reads and writes. */
export const paths = {
  core: (plural: string, namespace?: string, name?: string) =>
    join(["/api/v1", namespace && `namespaces/${enc(namespace)}`, plural, name && enc(name)]),
  group: (group: string, version: string, plural: string, namespace?: string, name?: string) =>
    join([
      `/apis/${group}/${version}`,
      namespace && `namespaces/${enc(namespace)}`,
      plural,
      name && enc(name),
    ]),
};

const enc = encodeURIComponent;
const join = (parts: (string | undefined)[]) => parts.filter(Boolean).join("/");
