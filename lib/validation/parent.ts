// The parent device a subnet's macvlan interfaces hang off: one name per LAN segment.

/** The parts of a MacvlanSubnet spec that name its parent device. */
export interface ParentSpec {
  master?: string;
  vlan?: number;
}

/**
 * The effective parent device of a subnet: `<master>.<vlan>` for vlan > 0 (the VLAN interface
 * the agent creates on master), else `master` itself; undefined without a master. Two specs
 * with one effective parent are on one LAN segment whatever their spelling:
 * `{master: eth0, vlan: 100}` and `{master: eth0.100, vlan: 0}` both give `eth0.100`, while
 * `eth0` and `eth0.100` are different segments (untagged and VLAN 100).
 */
export function effectiveParent(spec: ParentSpec): string | undefined {
  const { master, vlan } = spec;
  if (typeof master !== "string" || master === "") return undefined;
  return typeof vlan === "number" && Number.isInteger(vlan) && vlan > 0
    ? `${master}.${vlan}`
    : master;
}
