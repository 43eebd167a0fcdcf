// KFC throws plain objects ({status, data}) rather than Errors; these helpers read them safely.
interface KfcError {
  status?: number;
  statusText?: string;
  data?: { reason?: string; message?: string };
  message?: string;
}

export const statusOf = (e: unknown): number | undefined => (e as KfcError)?.status;

export const isAlreadyExists = (e: unknown) =>
  statusOf(e) === 409 && (e as KfcError).data?.reason === "AlreadyExists";
/** A `test` op that failed (resourceVersion moved) or an optimistic-lock conflict. */
export const isConflict = (e: unknown) =>
  statusOf(e) === 409 || (statusOf(e) === 422 && /test operation/i.test(describe(e)));
export const isNotFound = (e: unknown) => statusOf(e) === 404;

/** Reads an object, or undefined when it does not exist; other failures still throw. */
export async function getIfExists<T>(read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

export function describe(e: unknown): string {
  const err = e as KfcError;
  if (err?.data?.message) return err.data.message;
  if (err?.message) return err.message;
  if (err?.statusText) return `${err.status} ${err.statusText}`;
  return String(e);
}
