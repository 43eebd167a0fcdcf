// The one retry policy for Kubernetes API calls: which failures are worth another attempt
// (lib/k8s/errors.ts `isTransient`: unreachable, timed out, 429, 500/502/503/504 — never a 409,
// 422, 403 or 404), how long to wait (exponential backoff with jitter, at least the server's
// Retry-After) and when to stop (a total deadline). Admission must answer inside the webhook's
// timeout (package.json `webhookTimeout`: 10 s), so its calls share one budget per request
// (`withDeadline`); the watcher's reconcilers may wait longer.
import { AsyncLocalStorage } from "node:async_hooks";
import { isTransient, retryAfterMs } from "./errors";

export interface RetryPolicy {
  /** First backoff; each retry doubles it up to `maxDelayMs`. */
  baseMs: number;
  maxDelayMs: number;
  /** No attempt starts later than this after the first one. */
  deadlineMs: number;
  /** One attempt is abandoned (and counts as transient) after this long. */
  attemptTimeoutMs: number;
}

/** Admission: the webhook times out after 10 s; mutation and validation are separate calls. */
export const ADMISSION_RETRY: RetryPolicy = {
  baseMs: 100,
  maxDelayMs: 1000,
  deadlineMs: 5000,
  attemptTimeoutMs: 3000,
};

/** What one admission request may spend on API calls in all: 10 s webhook timeout, 3 s margin. */
export const ADMISSION_BUDGET_MS = 7000;

/** The watcher (reconcile, resync): nobody waits on it; the resync re-drives what still fails. */
export const RECONCILE_RETRY: RetryPolicy = {
  baseMs: 250,
  maxDelayMs: 5000,
  deadlineMs: 30_000,
  attemptTimeoutMs: 30_000,
};

/**
 * The wait before attempt `attempt + 1` (attempt counts from 1), or undefined to give up: the
 * error is permanent, or waiting would start the next attempt past the deadline. Jitter keeps
 * replicas that failed together from retrying together: a uniform pick in [d/2, d].
 */
export function nextDelay(
  policy: RetryPolicy,
  error: unknown,
  attempt: number,
  elapsedMs: number,
  random: () => number = Math.random,
): number | undefined {
  if (!isTransient(error)) return undefined;
  const backoff = Math.min(policy.maxDelayMs, policy.baseMs * 2 ** (attempt - 1));
  const jittered = backoff / 2 + (random() * backoff) / 2;
  const delay = Math.max(jittered, Math.min(retryAfterMs(error) ?? 0, policy.maxDelayMs));
  return elapsedMs + delay < policy.deadlineMs ? Math.round(delay) : undefined;
}

export interface RetryHooks {
  /** Called before each wait, with the failure that caused it. */
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

/** Retries seen since start, by outcome (tests, the docs' figures, logs). */
export const retryStats = { retried: 0, recovered: 0, exhausted: 0 };

/**
 * Runs `op(attemptTimeoutMs)` until it succeeds, fails permanently or the deadline (the policy's,
 * or the request's budget from `withDeadline`, whichever comes first) has passed. The timeout
 * passed to each attempt never reaches past that deadline.
 */
export async function retrying<T>(
  policy: RetryPolicy,
  op: (attemptTimeoutMs: number) => Promise<T>,
  hooks: RetryHooks = {},
): Promise<T> {
  const now = hooks.now ?? Date.now;
  const sleep = hooks.sleep ?? ((ms: number) => new Promise<void>(r => setTimeout(r, ms)));
  const started = now();
  // Background work a request started (pool top-ups, timers) inherits its budget through
  // AsyncLocalStorage: once that has passed, the request has been answered and the call is no
  // longer part of it, so only the policy's own deadline applies.
  const budget = deadlineStore.getStore();
  const budgetEnd = budget !== undefined && budget > started ? budget : Infinity;
  const end = Math.min(started + policy.deadlineMs, budgetEnd);
  const effective = { ...policy, deadlineMs: end - started };
  for (let attempt = 1; ; attempt++) {
    const timeout = Math.max(1, Math.min(policy.attemptTimeoutMs, end - now()));
    try {
      const result = await op(timeout);
      if (attempt > 1) retryStats.recovered++;
      return result;
    } catch (e) {
      const delay = nextDelay(effective, e, attempt, now() - started, hooks.random);
      if (delay === undefined) {
        if (attempt > 1 || isTransient(e)) retryStats.exhausted++;
        throw e;
      }
      retryStats.retried++;
      hooks.onRetry?.(e, attempt, delay);
      await sleep(delay);
    }
  }
}

const deadlineStore = new AsyncLocalStorage<number>();

/** Runs `fn` with every retried API call inside it ending by `budgetMs` from now. */
export function withDeadline<T>(budgetMs: number, fn: () => Promise<T>): Promise<T> {
  const end = Date.now() + budgetMs;
  const outer = deadlineStore.getStore();
  return deadlineStore.run(Math.min(end, outer ?? Infinity), fn);
}

/**
 * A create whose earlier attempt may have reached the server (it timed out, or the connection
 * broke after sending) answers 409 AlreadyExists on the retry. The object is ours if it carries
 * the random token we sent: `keys` are the annotations that hold such tokens, and every one the
 * sent object carries must match.
 */
export function isOwnEarlierCreate(
  sent: { metadata?: { annotations?: Record<string, string> } },
  existing: { metadata?: { annotations?: Record<string, string> } } | undefined,
  keys: readonly string[],
): boolean {
  const mine = keys.filter(k => sent.metadata?.annotations?.[k]);
  if (!existing || mine.length === 0) return false;
  return mine.every(k => existing.metadata?.annotations?.[k] === sent.metadata!.annotations![k]);
}
