// Bridges MacvlanSubnet/MacvlanLease objects and the pure IPAM engine.
import { MacvlanLease, MacvlanSubnet } from "../../crds/types";
import { AllocatorOptions, LeaseRecord, SubnetAllocator } from "../ipam";

export type Allocator = SubnetAllocator;

export const leaseRecord = (lease: MacvlanLease): LeaseRecord => ({
  ip: lease.spec!.ip,
  phase: lease.status?.phase,
  releasedAt: lease.status?.releasedAt,
});

export function allocatorFromLeases(
  subnet: MacvlanSubnet,
  leases: MacvlanLease[],
  options: AllocatorOptions = {},
): Allocator {
  const spec = subnet.spec!;
  const allocator = new SubnetAllocator(
    subnet.metadata!.name!,
    {
      cidr: spec.cidr,
      gateway: spec.gateway,
      ranges: spec.ranges,
      exclude: spec.exclude,
      reuseDelaySeconds: spec.reuseDelaySeconds,
    },
    options,
  );
  allocator.rebuild(leases.map(leaseRecord));
  return allocator;
}

/** Applies one lease change seen on the watch to the allocator. */
export function observeLease(allocator: Allocator, lease: MacvlanLease): void {
  const record = leaseRecord(lease);
  if (record.phase === "Released") {
    // An unreadable time cools from now: the safe side.
    const at = Date.parse(String(record.releasedAt ?? ""));
    allocator.release(record.ip, Number.isFinite(at) ? at : Date.now());
  } else allocator.markAllocated(record.ip);
}
