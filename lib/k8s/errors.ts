// The one reader of Kubernetes client errors. KFC throws plain objects ({status, statusText, data})
// rather than Errors, and reports a transport failure (API server unreachable, connection reset)
// as status 400 "fetch failed" with the cause in `e`: never show that to a user as a bad request.

interface ClientError {
  status?: number;
  statusText?: string;
  data?: { reason?: string; message?: string } | string;
  message?: string;
  /** Set by KFC's fetch when the request never got an HTTP answer. */
  e?: { message?: string; cause?: { code?: string; message?: string } };
}

const asError = (e: unknown): ClientError => (e && typeof e === "object" ? (e as ClientError) : {});

export const statusOf = (e: unknown): number | undefined => asError(e).status;

const dataOf = (e: unknown) => {
  const data = asError(e).data;
  return data && typeof data === "object" ? data : undefined;
};

/** The request never reached the API server, or its answer was lost on the way. */
export function isTransportFailure(e: unknown): boolean {
  const err = asError(e);
  if (err.e) return true;
  return (
    err.status === 400 && /fetch failed|ECONNREFUSED|ECONNRESET|socket/i.test(err.statusText ?? "")
  );
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

/** Worth retrying as is: unreachable, throttled or briefly unavailable. */
export const isTransient = (e: unknown) =>
  isTransportFailure(e) || [429, 500, 502, 503, 504].includes(statusOf(e) ?? 0);

/** A sentence for a user or a log line: what failed and, where we know it, what to do. */
export function describe(e: unknown): string {
  const err = asError(e);
  if (isTransportFailure(e)) {
    const cause = err.e?.cause?.code ?? err.e?.cause?.message ?? err.e?.message ?? err.statusText;
    return `the API server could not be reached${cause ? ` (${cause})` : ""}; retry`;
  }
  const data = dataOf(e);
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

/** Runs `op`, retrying transient failures a few times with backoff; other errors throw at once. */
export async function withRetry<T>(op: () => Promise<T>, attempts = 4, baseMs = 200): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await op();
    } catch (e) {
      if (i >= attempts || !isTransient(e)) throw e;
      await new Promise(r => setTimeout(r, baseMs * 2 ** (i - 1)));
    }
  }
}
