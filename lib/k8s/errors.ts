// The one reader of Kubernetes client errors. KFC throws plain objects ({status, statusText, data})
// rather than Errors, and reports a transport failure (API server unreachable, connection reset)
// as status 400 "fetch failed" with the cause in `e`: never show that to a user as a bad request.

interface ClientError {
  status?: number;
  statusText?: string;
  data?: { reason?: string; message?: string } | string;
  message?: string;
  /** KFC's response headers (a Headers object); empty when no answer arrived. */
  headers?: { get?(name: string): string | null; entries?(): Iterator<unknown> };
  /** Set by KFC's fetch when the request never got a whole HTTP answer. */
  e?: { name?: string; message?: string; cause?: { code?: string; message?: string } };
}

const asError = (e: unknown): ClientError => (e && typeof e === "object" ? (e as ClientError) : {});

export const statusOf = (e: unknown): number | undefined => asError(e).status;

const dataOf = (e: unknown) => {
  const data = asError(e).data;
  return data && typeof data === "object" ? data : undefined;
};

/** KFC got an HTTP answer (status line and headers) before whatever went wrong. */
const answered = (err: ClientError) => {
  const entries = err.headers?.entries?.();
  return !!entries && !entries.next().done;
};

/** KFC gives a timed-out request (AbortSignal.timeout) the DOMException's code, 23, as status. */
const isTimeout = (err: ClientError) =>
  err.e?.name === "TimeoutError" || err.e?.name === "AbortError";

/** The request never reached the API server, or its answer was lost on the way. */
export function isTransportFailure(e: unknown): boolean {
  const err = asError(e);
  if (err.e) return !answered(err);
  return (
    err.status === 400 && /fetch failed|ECONNREFUSED|ECONNRESET|socket/i.test(err.statusText ?? "")
  );
}

/** The server answered success, but the body broke off: the write may well have happened. */
const answerCutOff = (err: ClientError) =>
  !!err.e && answered(err) && (err.status ?? 0) >= 200 && (err.status ?? 0) < 300;

/** Seconds the server asked us to wait (429/503 Retry-After), in ms. */
export function retryAfterMs(e: unknown): number | undefined {
  const value = asError(e).headers?.get?.("retry-after");
  const seconds = value ? Number(value) : NaN;
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined;
}

export const isAlreadyExists = (e: unknown) =>
  statusOf(e) === 409 && dataOf(e)?.reason === "AlreadyExists";

export const isNotFound = (e: unknown) => statusOf(e) === 404 && !isTransportFailure(e);

/**
 * Our precondition did not hold: an optimistic-lock conflict (409), a failed JSON-patch `test`
 * (the API server answers 422 with the generic "the server rejected our request due to an error
 * in our request"), or a delete whose uid/resourceVersion precondition failed (409).
 */
export function isConflict(e: unknown): boolean {
  if (statusOf(e) === 409) return !isAlreadyExists(e);
  if (statusOf(e) !== 422) return false;
  const message = dataOf(e)?.message ?? "";
  return /test operation|rejected our request due to an error in our request|precondition/i.test(
    message,
  );
}

const TRANSIENT_STATUS = [429, 500, 502, 503, 504];

/**
 * Worth retrying as is: unreachable, timed out, throttled or briefly unavailable. Never a
 * conflict (409), an invalid object (422), a refusal (403) or a missing object (404).
 */
export const isTransient = (e: unknown) =>
  isTransportFailure(e) || answerCutOff(asError(e)) || TRANSIENT_STATUS.includes(statusOf(e) ?? 0);

/**
 * A sentence for a user or a log line: what failed and, where we know it, what to do. A
 * transient failure says so and ends in "retry"; a permanent one carries the server's message.
 */
export function describe(e: unknown): string {
  const err = asError(e);
  if (isTransportFailure(e)) {
    if (isTimeout(err)) return "the API server did not answer in time (timeout); retry";
    const cause = err.e?.cause?.code ?? err.e?.cause?.message ?? err.e?.message ?? err.statusText;
    return `the API server could not be reached${cause ? ` (${cause})` : ""}; retry`;
  }
  if (answerCutOff(err))
    return `the API server's answer was cut off (${err.e?.message ?? "incomplete body"}); retry`;
  const data = dataOf(e);
  if (isTransient(e)) {
    const why = data?.message ?? err.statusText ?? "";
    return `the API server is unavailable (${err.status}${why ? ` ${why}` : ""}); retry`;
  }
  if (data?.message) return data.message;
  if (typeof err.data === "string" && err.data.trim() && err.status)
    return `${err.status} ${err.data.trim().slice(0, 300)}`;
  if (e instanceof Error || err.message) return err.message ?? String(e);
  if (err.status) return `the API server answered ${err.status} ${err.statusText ?? ""}`.trim();
  return String(e);
}

/** Reads an object, or undefined when it does not exist; other failures still throw. */
export async function getIfExists<T>(read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

/** A message `describe` made for a transient failure: the user should retry, not fix anything. */
export const isRetryAdvice = (message: string) =>
  /the API server( could not be reached| did not answer in time| is unavailable|'s answer was cut off)/.test(
    message,
  ) && message.endsWith("; retry");

/** The HTTP status a denial carrying `message` should have: 503 when only a retry is needed. */
export const denialStatus = (message: string) => (isRetryAdvice(message) ? 503 : 422);
