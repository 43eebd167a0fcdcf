// Phase 1 of the planner (pure): subnets grouped by parent device, and what the parent NIC
// (or the VLAN sub-interface and its master) needs before a shim can sit on it.
import type { MacvlanMode } from "../../crds/types";
import { parseCIDR } from "../ip";
import type { SubnetLike } from "../pods";
import { MAX_IFNAME, type KernelLink } from "../types";
import { parentName, problem, StepSink, type ParentPlan, type SubnetPlan } from "./common";

const modeOf = (s: SubnetLike): MacvlanMode => s.spec?.mode ?? "bridge";

export interface ParentGrouping {
  subnets: Record<string, SubnetPlan>;
  /** Sorted by name. */
  parents: ParentPlan[];
}

/** Checks one subnet's spec; returns its parent name, or undefined (with a problem) when unusable. */
function validateSubnet(s: SubnetLike, sp: SubnetPlan): string | undefined {
  const spec = s.spec;
  if (!spec?.master) return void problem(sp, "InvalidSubnet", "spec.master is empty");
  const cidr = spec.cidr ? parseCIDR(spec.cidr) : undefined;
  if (!cidr)
    return void problem(
      sp,
      "InvalidSubnet",
      `spec.cidr ${JSON.stringify(spec.cidr)} is not a CIDR`,
    );
  sp.family = cidr.family;
  sp.cidr = spec.cidr;
  const vlan = spec.vlan ?? 0;
  if (!Number.isInteger(vlan) || vlan < 0 || vlan > 4094)
    return void problem(sp, "InvalidSubnet", `spec.vlan ${vlan} is out of range 0-4094`);
  const pname = parentName(spec);
  sp.parent = pname;
  if (pname.length > MAX_IFNAME) {
    return void problem(
      sp,
      "InvalidSubnet",
      `parent name ${pname} is longer than ${MAX_IFNAME} characters`,
    );
  }
  return pname;
}

/** Sorts a subnet into its parent by mode: shim subnets, passthru owners, private (neither). */
function addToParent(p: ParentPlan, s: SubnetLike, sp: SubnetPlan): void {
  p.subnets.push(sp);
  const mtu = s.spec.mtu;
  if (mtu) p.wantMtu = Math.max(p.wantMtu ?? 0, mtu);
  if (sp.mode === "passthru") {
    p.passthru.push(s.name);
    sp.notes.push("mode passthru: the pod owns the parent NIC, no host shim");
  } else if (sp.mode === "private") {
    sp.notes.push("mode private: the kernel isolates these pods from the host, no host shim");
  } else {
    if (sp.mode === "vepa") sp.notes.push("mode vepa: host access needs hairpin on the switch");
    p.shimSubnets.push(sp);
    p.mtus.push(mtu);
  }
}

/** Phase "parents": one SubnetPlan per subnet, valid ones grouped under their parent device. */
export function groupParents(input: SubnetLike[]): ParentGrouping {
  const subnets: Record<string, SubnetPlan> = {};
  const parents = new Map<string, ParentPlan>();
  for (const s of [...input].sort((a, b) => a.name.localeCompare(b.name))) {
    const sp: SubnetPlan = { subnet: s.name, mode: modeOf(s), routes: [], problems: [], notes: [] };
    subnets[s.name] = sp;
    const pname = validateSubnet(s, sp);
    if (!pname) continue;
    let p = parents.get(pname);
    if (!p) {
      const vlan = s.spec.vlan ?? 0;
      p = {
        name: pname,
        master: s.spec.master,
        vlan,
        subnets: [],
        shimSubnets: [],
        passthru: [],
        mtus: [],
      };
      parents.set(pname, p);
    }
    addToParent(p, s, sp);
  }
  return { subnets, parents: [...parents.values()].sort((a, b) => a.name.localeCompare(b.name)) };
}

export interface ParentDevicePlan {
  /** False when the parent cannot carry anything on this node (problems recorded). */
  usable: boolean;
  /** The parent's MTU once the steps have run. */
  mtu?: number;
  parent?: KernelLink;
  master?: KernelLink;
}

function reportAll(p: ParentPlan, reason: "ParentMissing" | "ParentConflict", msg: string) {
  for (const s of p.subnets) problem(s, reason, msg);
}

/** The VLAN's master: MTU at least the subnets', and up. */
function planMaster(p: ParentPlan, master: KernelLink, out: StepSink): void {
  if (p.wantMtu && master.mtu < p.wantMtu) {
    out.add(
      { op: "setMtu", name: master.name, mtu: p.wantMtu },
      `raise ${master.name} MTU to ${p.wantMtu} for ${p.name}`,
      { critical: true },
    );
  }
  if (!master.up)
    out.add({ op: "setUp", name: master.name }, `master ${master.name} is down`, {
      critical: true,
    });
}

/**
 * Phase "parents", kernel side: creates a missing VLAN parent, raises MTUs (never lowers them),
 * brings parent and master up. Steps go into `out` (the parent's group).
 */
export function planParentDevice(
  p: ParentPlan,
  links: Map<string, KernelLink>,
  out: StepSink,
): ParentDevicePlan {
  const master = links.get(p.master);
  const parent = links.get(p.name);
  if (!parent && p.vlan === 0) {
    reportAll(p, "ParentMissing", `parent ${p.name} does not exist on this node`);
    return { usable: false };
  }
  if (!parent && !master) {
    reportAll(
      p,
      "ParentMissing",
      `master ${p.master} of parent ${p.name} does not exist on this node`,
    );
    return { usable: false };
  }
  if (p.vlan > 0 && master) planMaster(p, master, out);
  if (!parent) {
    out.add(
      { op: "createVlan", name: p.name, master: p.master, vlanId: p.vlan, mtu: p.wantMtu },
      `parent ${p.name} is missing`,
      { critical: true },
    );
    out.add({ op: "setUp", name: p.name }, `bring up new parent ${p.name}`, { critical: true });
    return { usable: true, mtu: p.wantMtu ?? master?.mtu ?? 1500, master };
  }
  if (
    parent.kind === "vlan" &&
    p.vlan > 0 &&
    parent.vlanId !== undefined &&
    parent.vlanId !== p.vlan
  ) {
    reportAll(p, "ParentConflict", `${p.name} is VLAN ${parent.vlanId}, not ${p.vlan}`);
    return { usable: false };
  }
  let mtu = parent.mtu;
  if (p.wantMtu && parent.mtu < p.wantMtu) {
    out.add(
      { op: "setMtu", name: p.name, mtu: p.wantMtu },
      `raise ${p.name} MTU ${parent.mtu} → ${p.wantMtu}`,
      { critical: true },
    );
    mtu = p.wantMtu;
  }
  if (!parent.up)
    out.add({ op: "setUp", name: p.name }, `parent ${p.name} is down`, { critical: true });
  return { usable: true, mtu, parent, master };
}
