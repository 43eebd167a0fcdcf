// The regression guard of bench:peer (issue 11): the same burst as `npm run bench:peer`, smaller
// (3 Deployments x 50 pods on 2 kubelet nodes), first on the floor (macvlan + host-local, no
// cluster IPAM), then on pepr-macvlan installed with `npx pepr deploy` and the agent. It fails on
// what a user would see as a failure — a webhook call that timed out or was refused, a
// FailedCreate, a duplicate address, a pod left without one — and never on a wall-clock figure:
// the times and ratios are printed for the log only.
import anyTest, { TestFn } from "ava";
import { withCluster } from "./helpers";
import { PeerOptions, SETUPS } from "../../bench/peer/config";
import { webhookRejections } from "../../bench/peer/metrics";
import { mainTable } from "../../bench/peer/report";
import { SetupResult, runSetup } from "../../bench/peer/run";
import { setups } from "../../bench/peer/setups";

const test = anyTest as TestFn;
const cluster = withCluster(test, { nodes: 2 });

const GUARD: PeerOptions = {
  pods: 150,
  deployments: 3,
  replicas: 50,
  nodes: 2,
  holdSeconds: 20,
  timeoutSeconds: 600,
  exact: false,
  setups: SETUPS.filter(s => s !== "whereabouts"),
  writeResults: false,
  resultsDir: "",
};

const results: SetupResult[] = [];

for (const setup of setups(GUARD)) {
  test.serial(
    `${setup.name}: ${GUARD.pods} pods at once, each addressed once, none refused`,
    async t => {
      t.timeout(20 * 60_000);
      const r = await runSetup(cluster(), GUARD, setup);
      results.push(r);
      t.log(`\n${mainTable(results)}`);
      t.is(r.addressed, GUARD.pods, "pods holding a net1 address");
      t.is(r.running, GUARD.pods, "pods Running");
      t.is(r.duplicates, 0, "addresses held by two live pods at once");
      t.is(r.warnings.FailedCreate ?? 0, 0, `FailedCreate: ${r.messages.FailedCreate ?? ""}`);
      t.deepEqual(webhookRejections(r.metrics, /pepr/), {}, "webhook calls refused or timed out");
    },
  );
}
