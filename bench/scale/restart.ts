// Restart-to-ready of an admission replica: one admission pod is deleted; its replacement must
// rebuild the replica's state from every lease before its readiness probe passes.
import { Cluster, Pod, podReady, sleep } from "../../test/integration/helpers";
import { NAMESPACE } from "../../hack/module/deploy";

export interface RestartResult {
  /** Delete request → a new admission pod Ready (bench's poll, 250 ms). */
  deleteToReadySeconds?: number;
  /** The new container's startedAt → its Ready condition (status timestamps, 1 s resolution). */
  startToReadySeconds?: number;
  pod?: string;
}

const admissionPods = async (c: Cluster) =>
  (await c.listPods(NAMESPACE, "pepr.dev/controller=admission")).filter(
    p => !p.metadata.deletionTimestamp,
  );

function startToReady(p: Pod): number | undefined {
  const started = (p.status?.containerStatuses ?? [])
    .map((s: { state?: { running?: { startedAt?: string } } }) => s.state?.running?.startedAt)
    .filter(Boolean)
    .map((t: string) => Date.parse(t));
  const ready = (p.status?.conditions ?? []).find(
    (x: { type: string; status: string }) => x.type === "Ready" && x.status === "True",
  );
  if (!started.length || !ready?.lastTransitionTime) return undefined;
  return (Date.parse(ready.lastTransitionTime) - Math.max(...started)) / 1000;
}

export async function restartAdmission(c: Cluster, timeoutSeconds = 300): Promise<RestartResult> {
  const old = await admissionPods(c);
  if (!old.length) return {};
  const victim = old[0].metadata.name!;
  const keep = new Set(old.map(p => p.metadata.name));
  const t0 = Date.now();
  await c.api.delete(`/api/v1/namespaces/${NAMESPACE}/pods/${victim}`);
  while (Date.now() - t0 < timeoutSeconds * 1000) {
    const fresh = (await admissionPods(c)).find(p => !keep.has(p.metadata.name) && podReady(p));
    if (fresh)
      return {
        deleteToReadySeconds: (Date.now() - t0) / 1000,
        startToReadySeconds: startToReady(fresh),
        pod: fresh.metadata.name,
      };
    await sleep(250);
  }
  return {};
}
