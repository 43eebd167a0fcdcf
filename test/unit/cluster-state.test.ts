// The admission replica's caches: the sticky-owner index and the allocator follow lease events.
import test from "ava";
import { ClusterState } from "../../capabilities/cluster-state";
import { lease, subnet } from "./helpers/objects";
import { stickyKey } from "../../lib/owner";

const owned = (ip: string) => lease({ ip, owner: { name: "db", ordinal: 0 } });

test("the owner index survives the delete of an older lease of the same ordinal", t => {
  const state = new ClusterState();
  const old = owned("198.18.100.30");
  const fresh = owned("198.18.100.31");
  state.leases.upsert(old);
  state.leases.upsert(fresh);
  state.leases.forget(old);
  t.is(state.leaseByOwner("team-a/db/0/4")?.metadata?.name, fresh.metadata!.name);
  state.leases.forget(fresh);
  t.is(state.leaseByOwner("team-a/db/0/4"), undefined);
});

test("a dual-stack ordinal has one lease per family in the owner index", t => {
  const state = new ClusterState();
  const v4 = owned("198.18.100.30");
  const v6 = lease({ subnet: "lan6", ip: "2001:db8:18::30", owner: { name: "db", ordinal: 0 } });
  state.leases.upsert(v4);
  state.leases.upsert(v6);
  const owner = v4.spec!.owner!;
  t.is(state.leaseByOwner(stickyKey(owner, "198.18.100.0/24"))?.metadata?.name, v4.metadata!.name);
  t.is(state.leaseByOwner(stickyKey(owner, "2001:db8:18::/64"))?.metadata?.name, v6.metadata!.name);
});

test("an expired Released lease keeps its place in the reuse order after its object is deleted", t => {
  const state = new ClusterState();
  const s = subnet("lan", { ranges: [{ start: "198.18.100.10", end: "198.18.100.12" }] });
  state.subnets.upsert(s);
  const allocator = state.allocator(s);
  // The whole small pool is leased, then .11 is released before .10; both objects expire.
  for (const ip of ["198.18.100.10", "198.18.100.11", "198.18.100.12"])
    state.leases.upsert(lease({ ip }));
  const older = lease({
    ip: "198.18.100.11",
    phase: "Released",
    releasedAt: "2026-12-01T10:00:00Z",
    rv: "200",
  });
  const newer = lease({
    ip: "198.18.100.10",
    phase: "Released",
    releasedAt: "2026-12-01T10:05:00Z",
    rv: "201",
  });
  state.leases.upsert(older);
  state.leases.upsert(newer);
  state.leases.forget(older);
  state.leases.forget(newer);
  t.is(
    allocator.next(Date.parse("2026-12-01T11:00:00Z")),
    "198.18.100.11",
    "least recently released first",
  );
  t.is(allocator.next(Date.parse("2026-12-01T11:00:00Z")), "198.18.100.10");
});
