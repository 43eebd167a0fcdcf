// The retry policy (lib/k8s/retry.ts): which failures are retried, how long it waits, that it
// stops at its deadline or the request's budget, and that a lease create — the lock — is never
// taken for ours unless the existing lease carries our token.
import test from "ava";
import {
  ADMISSION_RETRY,
  RECONCILE_RETRY,
  RetryPolicy,
  isOwnEarlierCreate,
  nextDelay,
  retrying,
  withDeadline,
} from "../../lib/k8s/retry";
import { createLeaseOnce, LEASE_TOKEN_KEYS } from "../../capabilities/k8s/port";
import { lease } from "./helpers/objects";
import { MacvlanLease } from "../../crds/types";

const unreachable = {
  ok: false,
  status: 400,
  statusText: "fetch failed",
  e: { message: "fetch failed", cause: { code: "ECONNREFUSED" } },
};
const timedOut = {
  ok: false,
  status: 23,
  statusText: "The operation was aborted due to timeout",
  e: { name: "TimeoutError", message: "The operation was aborted due to timeout" },
};
const status = (code: number, reason = "", headers?: Record<string, string>) => ({
  ok: false,
  status: code,
  data: { reason, message: `answer ${code}` },
  headers: new Headers(headers),
});

const POLICY: RetryPolicy = {
  baseMs: 100,
  maxDelayMs: 800,
  deadlineMs: 2000,
  attemptTimeoutMs: 500,
};

/** A fake clock: sleeping advances it, so tests run in no time and can read the waits. */
function clock() {
  let t = 0;
  const waits: number[] = [];
  return {
    waits,
    now: () => t,
    sleep: async (ms: number) => {
      waits.push(ms);
      t += ms;
    },
    advance: (ms: number) => (t += ms),
  };
}

/** An operation that fails with `errors` in turn, then answers "ok". */
function flaky(errors: unknown[]) {
  const calls: number[] = [];
  return {
    calls,
    op: async (timeoutMs: number) => {
      calls.push(timeoutMs);
      if (calls.length <= errors.length) throw errors[calls.length - 1];
      return "ok";
    },
  };
}

test("transient failures are retried; conflicts, invalid objects, refusals and not-found are not", t => {
  for (const e of [
    unreachable,
    timedOut,
    status(429),
    status(500),
    status(502),
    status(503),
    status(504),
  ])
    t.not(
      nextDelay(POLICY, e, 1, 0, () => 0.5),
      undefined,
      JSON.stringify(e),
    );
  for (const e of [
    status(409, "AlreadyExists"),
    status(409, "Conflict"),
    status(422, "Invalid"),
    status(403, "Forbidden"),
    status(404, "NotFound"),
    status(400, "BadRequest"),
    new Error("kubeconfig missing"),
  ])
    t.is(
      nextDelay(POLICY, e, 1, 0, () => 0.5),
      undefined,
      JSON.stringify(e),
    );
});

test("the wait doubles up to its cap, with jitter in [d/2, d], and honours Retry-After", t => {
  t.is(
    nextDelay(POLICY, unreachable, 1, 0, () => 0),
    50,
  );
  t.is(
    nextDelay(POLICY, unreachable, 1, 0, () => 1),
    100,
  );
  t.is(
    nextDelay(POLICY, unreachable, 3, 0, () => 1),
    400,
  );
  t.is(
    nextDelay(POLICY, unreachable, 10, 0, () => 1),
    800,
    "capped",
  );
  t.is(
    nextDelay(POLICY, status(429, "", { "retry-after": "0.6" }), 1, 0, () => 0),
    600,
  );
  t.is(
    nextDelay(POLICY, unreachable, 1, 1990, () => 1),
    undefined,
    "past the deadline",
  );
});

test("fails twice, then succeeds: three attempts, two backoffs", async t => {
  const c = clock();
  const f = flaky([unreachable, status(503)]);
  t.is(await retrying(POLICY, f.op, { ...c, random: () => 1 }), "ok");
  t.is(f.calls.length, 3);
  t.deepEqual(c.waits, [100, 200]);
});

test("a 409 is never retried: one attempt, the conflict comes back as it was", async t => {
  const c = clock();
  const conflict = status(409, "AlreadyExists");
  const f = flaky([conflict]);
  t.is(await retrying(POLICY, f.op, c).catch(e => e), conflict);
  t.is(f.calls.length, 1);
  t.deepEqual(c.waits, []);
});

test("an API server that stays down is given up on at the deadline, with its last error", async t => {
  const c = clock();
  const f = flaky(Array(100).fill(unreachable));
  const err = await retrying(POLICY, f.op, { ...c, random: () => 1 }).catch(e => e);
  t.is(err, unreachable);
  t.true(c.now() <= POLICY.deadlineMs, `gave up at ${c.now()} ms`);
  t.true(f.calls.length > 3 && f.calls.length < 12, `${f.calls.length} attempts`);
});

test("withDeadline: every call inside ends by the request's budget, attempt timeouts included", async t => {
  const c = clock();
  const f = flaky(Array(100).fill(timedOut));
  const policy = { ...ADMISSION_RETRY };
  const started = Date.now();
  await withDeadline(300, () => retrying(policy, f.op, { ...c, now: Date.now })).catch(e => e);
  // Only real time counts against the budget here: the op and sleeps are instant, so attempts
  // stop once the sleeps (fake) would carry the next attempt past 300 ms.
  t.true(
    f.calls.every(ms => ms <= 300),
    `attempt timeouts ${f.calls.join(",")}`,
  );
  t.true(Date.now() - started < 1000);
});

test("admission's policy ends inside the webhook timeout; the watcher's waits longer", t => {
  t.true(ADMISSION_RETRY.deadlineMs + ADMISSION_RETRY.attemptTimeoutMs <= 10_000);
  t.true(RECONCILE_RETRY.deadlineMs > ADMISSION_RETRY.deadlineMs);
});

const ours = lease({ token: "our-token" });
const theirs = lease({ token: "their-token" });

test("a 409 after a lost answer is our own lease when it carries our token, else someone else's", t => {
  t.true(isOwnEarlierCreate(ours, structuredClone(ours), LEASE_TOKEN_KEYS));
  t.false(isOwnEarlierCreate(ours, theirs, LEASE_TOKEN_KEYS));
  t.false(isOwnEarlierCreate(ours, undefined, LEASE_TOKEN_KEYS), "gone meanwhile");
  t.false(isOwnEarlierCreate(lease(), lease(), LEASE_TOKEN_KEYS), "no token sent: never ours");
});

test("createLeaseOnce: our earlier create that timed out is success; a first-attempt 409 stays a 409", async t => {
  const exists = status(409, "AlreadyExists");
  const retriedThen409 = async (onRetry: () => void): Promise<MacvlanLease> => {
    onRetry(); // the first attempt timed out after the server had created the lease
    throw exists;
  };
  let gets = 0;
  const get = async () => (gets++, structuredClone(ours));
  const created = await createLeaseOnce(ours, retriedThen409, get);
  t.is(created.metadata?.annotations?.["macvlan.dev/reservation"], "our-token");
  t.is(gets, 1);
  // Someone else's lease under that name: the address is taken, as the caller must hear.
  const e = await createLeaseOnce(ours, retriedThen409, async () => theirs).catch(x => x);
  t.is(e, exists);
  // No retry happened: the 409 is the lock answering; no extra GET.
  gets = 0;
  const first = await createLeaseOnce(
    ours,
    async () => {
      throw exists;
    },
    get,
  ).catch(x => x);
  t.is(first, exists);
  t.is(gets, 0);
});

test("work a request started that runs after its budget has passed is bound by the policy alone", async t => {
  const f = flaky([unreachable]);
  const later = await withDeadline(50, async () => {
    // e.g. a pool top-up or a timer the mutation started: it runs once the request is over
    await new Promise(r => setTimeout(r, 80));
    return retrying(POLICY, f.op, { sleep: async () => undefined });
  });
  t.is(later, "ok", "retried, not cut off by the expired budget");
  t.deepEqual(f.calls, [POLICY.attemptTimeoutMs, POLICY.attemptTimeoutMs]);
});
