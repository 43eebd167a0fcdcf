// One bench:scale phase: create the pods up to the phase's count, then measure (measure.ts,
// restart.ts) with the cluster at that size.
import { log } from "../harness";
import { Cluster, sleep } from "../../test/integration/helpers";
import { delta } from "../peer/metrics";
import { metrics } from "../peer/run";
import type { ScaleOptions } from "./config";
import { createPods, measureResync, moduleRss, waitBound } from "./measure";
import type { PhaseResult } from "./report";
import { restartAdmission } from "./restart";

export async function runPhase(
  c: Cluster,
  o: ScaleOptions,
  from: number,
  to: number,
): Promise<PhaseResult> {
  log(`phase ${to}: creating pods ${from}..${to - 1}`);
  const before = await metrics(c);
  const t0 = Date.now();
  const create = await createPods(c, from, to, o.subnets, o.concurrency);
  const webhook = delta(before, await metrics(c));
  log(
    `phase ${to}: ${to - from} creates in ${create.seconds.toFixed(1)} s, ${create.failures} failed${create.firstError ? ` (${create.firstError})` : ""}`,
  );
  const b = await waitBound(c, to - create.failures, t0, o.timeoutSeconds);
  log(
    `phase ${to}: ${b.bound} bench leases Bound after ${b.seconds?.toFixed(1) ?? "(timed out)"} s`,
  );
  log(`phase ${to}: waiting for the next resync (every ${o.resyncSeconds} s)`);
  const resync = await measureResync(c, o.resyncSeconds);
  log(
    `phase ${to}: resync ${resync.ms ?? "not seen"} ms, ${resync.requests} API requests in its window`,
  );
  await sleep(5000);
  const rss = await moduleRss(c);
  log(
    `phase ${to}: RSS watcher ${rss.watcherMiB.toFixed(0)} MiB, admission ${Object.values(
      rss.admissionMiB,
    )
      .map(v => v.toFixed(0))
      .join(" / ")} MiB`,
  );
  const restart = await restartAdmission(c);
  log(
    `phase ${to}: admission restart delete → Ready ${restart.deleteToReadySeconds?.toFixed(1) ?? "(timed out)"} s`,
  );
  return {
    pods: to,
    create,
    webhook,
    boundSeconds: b.seconds,
    bound: b.bound,
    leases: b.leases,
    rss,
    resync,
    restart,
  };
}
