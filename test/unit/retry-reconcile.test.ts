// Pepr's Reconcile drops a callback that throws (no retry, no requeue). The port retries transient
// failures itself (lib/k8s/retry.ts); a bind that still fails is re-driven by the resync, which
// binds every pod to its lease from a fresh snapshot. This is the path we rely on: tested here.
// Serial: resync() shares one run in flight across callers.
import test from "ava";
import { a } from "pepr";
import { bindPodLease } from "../../capabilities/leases/lifecycle";
import { resync } from "../../capabilities/leases/resync";
import { Precondition } from "../../lib/decide/writes";
import { MacvlanLeaseStatus } from "../../crds/types";
import { FakePort } from "./helpers/fake-port";
import { admitted, lease, pod } from "./helpers/objects";

const unreachable = {
  ok: false,
  status: 400,
  statusText: "fetch failed",
  e: { message: "fetch failed", cause: { code: "ECONNREFUSED" } },
};

/** The API server goes away for status writes while `down` is set. */
class FlakyPort extends FakePort {
  down = true;
  failures = 0;
  async setLeaseStatus(lock: Precondition, status: MacvlanLeaseStatus) {
    if (this.down) {
      this.failures++;
      throw unreachable;
    }
    return super.setLeaseStatus(lock, status);
  }
}

test.serial("a bind that failed on the network is finished by the next resync", async t => {
  const port = new FlakyPort();
  const held = port.put(lease({ token: "tok" }));
  const p = pod("web-1", admitted("198.18.100.10", "tok")) as a.Pod;
  port.pods.set("team-a/web-1", p);
  port.namespaces = [{ name: "team-a", labels: { "macvlan.dev/subnet": "lan" } }];

  const err = await bindPodLease(p, port).catch(e => e);
  t.is(err, unreachable, "Pepr's Reconcile would log and drop this");
  t.true(port.failures > 0);
  t.not(port.leases.get(held.metadata!.name!)?.status?.phase, "Bound");

  port.down = false; // the API server is back; the resync runs (every MACVLAN_RESYNC_SECONDS)
  await resync(port);
  const after = port.leases.get(held.metadata!.name!);
  t.is(after?.status?.phase, "Bound");
  t.is(after?.spec?.podRef?.uid, "web-1-uid");
});

test.serial(
  "a resync that cannot read the cluster changes nothing and the next one repairs",
  async t => {
    const port = new FlakyPort();
    port.down = false;
    const held = port.put(lease({ token: "tok" }));
    const p = pod("web-1", admitted("198.18.100.10", "tok")) as a.Pod;
    port.pods.set("team-a/web-1", p);
    const listLeases = port.listLeases.bind(port);
    port.listLeases = async () => {
      throw unreachable;
    };
    await resync(port); // logs "could not read the cluster", writes nothing
    t.is(port.writes.length, 0);
    port.listLeases = listLeases;
    await resync(port);
    t.is(port.leases.get(held.metadata!.name!)?.status?.phase, "Bound");
  },
);
