// The one error describer (lib/k8s/errors.ts) tells a transient failure (retry, nothing to fix)
// from a permanent one (the server's own message), and admission denies the first with 503.
import test from "ava";
import { denialStatus, describe, isRetryAdvice, isTransient } from "../../lib/k8s/errors";

const headers = (h: Record<string, string> = { "content-type": "application/json" }) =>
  new Headers(h);

test("transient failures are described as such and end in 'retry'", t => {
  const cases: [unknown, string][] = [
    [
      {
        status: 400,
        statusText: "fetch failed",
        e: { message: "fetch failed", cause: { code: "ECONNRESET" } },
      },
      "the API server could not be reached (ECONNRESET); retry",
    ],
    [
      {
        status: 23,
        e: { name: "TimeoutError", message: "The operation was aborted due to timeout" },
      },
      "the API server did not answer in time (timeout); retry",
    ],
    [
      { status: 503, data: { message: "etcdserver: request timed out" }, headers: headers() },
      "the API server is unavailable (503 etcdserver: request timed out); retry",
    ],
    [
      { status: 429, statusText: "Too Many Requests", data: "", headers: headers() },
      "the API server is unavailable (429 Too Many Requests); retry",
    ],
    [
      { status: 201, e: { message: "terminated" }, headers: headers() },
      "the API server's answer was cut off (terminated); retry",
    ],
  ];
  for (const [e, text] of cases) {
    t.true(isTransient(e), text);
    t.is(describe(e), text);
    t.true(isRetryAdvice(describe(e)));
    t.is(denialStatus(`pepr-macvlan could not lease an address: ${describe(e)}`), 503);
  }
});

test("permanent failures carry the server's message and are not retry advice", t => {
  const cases: [unknown, string][] = [
    [
      { status: 422, data: { message: "spec.ip: Invalid value" }, headers: headers() },
      "spec.ip: Invalid value",
    ],
    [
      { status: 403, data: { message: "forbidden: cannot create" }, headers: headers() },
      "forbidden: cannot create",
    ],
    [{ status: 409, data: { reason: "AlreadyExists", message: "exists" } }, "exists"],
    // An HTTP 400 that came with an answer is a real bad request, even with a body-parse error.
    [
      { status: 400, statusText: "Bad Request", e: { message: "bad json" }, headers: headers() },
      "the API server answered 400 Bad Request",
    ],
  ];
  for (const [e, text] of cases) {
    t.false(isTransient(e), text);
    t.is(describe(e), text);
    t.false(isRetryAdvice(describe(e)));
  }
  t.is(denialStatus('fixed IP 198.18.100.7 on MacvlanSubnet "lan" is already taken'), 422);
  t.is(denialStatus("annotation says the API server could not be reached; retry later"), 422);
});
