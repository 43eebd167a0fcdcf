// What bench:peer reads from the API server's own /metrics (`kubectl get --raw /metrics`):
// the admission webhook latency histogram and the request counter, as deltas over a set-up.

export type Samples = Map<string, number>;

/** Parses Prometheus text into "name{labels}" → value (labels as printed by the API server). */
export function parseMetrics(text: string, names: string[]): Samples {
  const out: Samples = new Map();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    if (!names.some(n => line.startsWith(n))) continue;
    const i = line.lastIndexOf(" ");
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

export const METRIC_NAMES = [
  "apiserver_admission_webhook_admission_duration_seconds_bucket",
  "apiserver_admission_webhook_admission_duration_seconds_count",
  "apiserver_admission_webhook_rejection_count",
  "apiserver_request_total",
];

export function labels(key: string): Record<string, string> {
  const out: Record<string, string> = {};
  const body = key.slice(key.indexOf("{") + 1, key.lastIndexOf("}"));
  for (const m of body.matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)) out[m[1]] = m[2];
  return out;
}

export function delta(before: Samples, after: Samples): Samples {
  const out: Samples = new Map();
  for (const [k, v] of after) out.set(k, v - (before.get(k) ?? 0));
  return out;
}

export interface Latency {
  calls: number;
  p50?: number;
  p99?: number;
}

/**
 * p50/p99 (seconds) of Pod-CREATE-time webhook calls of one type ("admit" = mutating, "validating"),
 * from the histogram's buckets, linearly interpolated inside a bucket (the API server's buckets are
 * 5 ms, 25 ms, 100 ms, 500 ms, 1 s, 2.5 s, 10 s, 25 s: a quantile is only as fine as they are).
 */
export function webhookLatency(d: Samples, type: string, match: RegExp): Latency {
  const buckets = new Map<number, number>();
  for (const [k, v] of d) {
    if (!k.startsWith("apiserver_admission_webhook_admission_duration_seconds_bucket")) continue;
    const l = labels(k);
    if (l.type !== type || l.operation !== "CREATE" || !match.test(l.name)) continue;
    const le = l.le === "+Inf" ? Infinity : Number(l.le);
    buckets.set(le, (buckets.get(le) ?? 0) + v);
  }
  const les = [...buckets.keys()].sort((a, b) => a - b);
  const calls = buckets.get(Infinity) ?? 0;
  if (!calls) return { calls: 0 };
  const q = (p: number) => {
    const rank = p * calls;
    let prevLe = 0;
    let prevCount = 0;
    for (const le of les) {
      const c = buckets.get(le)!;
      if (c >= rank) {
        if (le === Infinity) return prevLe;
        return prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(c - prevCount, 1e-9);
      }
      prevLe = le;
      prevCount = c;
    }
    return prevLe;
  };
  return { calls, p50: q(0.5), p99: q(0.99) };
}

/** Webhook rejections (including calls that failed or timed out: error_type calling_webhook_error). */
export function webhookRejections(d: Samples, match: RegExp): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of d) {
    if (!k.startsWith("apiserver_admission_webhook_rejection_count") || !v) continue;
    const l = labels(k);
    if (!match.test(l.name)) continue;
    out[l.error_type] = (out[l.error_type] ?? 0) + v;
  }
  return out;
}

export const WRITE_VERBS = ["POST", "PUT", "PATCH", "DELETE", "APPLY"];

/**
 * Write requests (POST/PUT/PATCH/DELETE and server-side APPLY; or the given verbs) in total and by
 * "VERB resource[.group][/subresource]", less those `skip` rejects.
 */
export function writeRequests(
  d: Samples,
  verbs: string[] = WRITE_VERBS,
  skip: (key: string) => boolean = () => false,
): { total: number; byResource: Map<string, number> } {
  const byResource = new Map<string, number>();
  let total = 0;
  for (const [k, v] of d) {
    if (!k.startsWith("apiserver_request_total{") || !v) continue;
    const l = labels(k);
    if (!verbs.includes(l.verb)) continue;
    const r = `${l.verb} ${l.group ? `${l.resource}.${l.group}` : l.resource}${l.subresource ? `/${l.subresource}` : ""}`;
    if (skip(r)) continue;
    total += v;
    byResource.set(r, (byResource.get(r) ?? 0) + v);
  }
  return { total, byResource };
}
