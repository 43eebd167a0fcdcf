// Run by test/unit/retry-giveup.test.ts in a child process: a KFC watch with Pepr 1.1.4's own
// event handlers (the ones Pepr registers on every binding's watch, from its shipped source),
// pointed at an API server that is not there, allowed one resync failure. Exits 0 only if the
// process is still alive after GIVE_UP should have happened.
import { K8s, kind } from "kubernetes-fluent-client";

// Loaded by path at run time: Pepr does not export these, and tsc must not type-check its source.
const PEPR_SRC = "pepr/src/lib";
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { registerWatchEventHandlers } = require(`${PEPR_SRC}/processors/watch-processor`) as {
  registerWatchEventHandlers(w: unknown, log: (e: string, m?: string) => void, m: unknown): void;
};
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { metricsCollector } = require(`${PEPR_SRC}/telemetry/metrics`) as {
  metricsCollector: unknown;
};

const watcher = K8s(kind.Pod).Watch(() => undefined, {
  resyncFailureMax: 1,
  resyncDelaySec: 1,
  lastSeenLimitSeconds: 1,
});
registerWatchEventHandlers(
  watcher,
  (event, message) => console.log(event, message),
  metricsCollector,
);
void watcher.start().catch(e => console.log("start failed", String(e)));
setTimeout(() => {
  console.log("STILL ALIVE");
  process.exit(0);
}, 15_000).unref();
// Keeps the process up until then, unless the give-up kills it.
setInterval(() => undefined, 1000);
