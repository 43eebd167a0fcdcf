// Admission wiring for MacvlanSubnet: reads what the pure validator needs (the other subnets and
// this subnet's leases) and turns its problems into Approve/Deny. Bound by
// capabilities/subnets/index.ts, e.g.
//   When(MacvlanSubnet).IsCreatedOrUpdated().Validate(validateSubnetRequest)
import { K8s, Log, PeprValidateRequest } from "pepr";

import { MacvlanLease, MacvlanSubnet } from "../../crds/kinds";
import { LABEL_SUBNET } from "../../lib/names";
import { describe } from "../../lib/k8s/errors";
import { formatProblems, validateSubnet } from "../../lib/validation/subnet";

/** The reads the handler makes; replaceable in tests. */
export interface SubnetValidationReads {
  listSubnets(): Promise<MacvlanSubnet[]>;
  listLeases(subnet: string): Promise<MacvlanLease[]>;
}

export const kfcReads: SubnetValidationReads = {
  listSubnets: async () => (await K8s(MacvlanSubnet).Get()).items,
  listLeases: async subnet => (await K8s(MacvlanLease).WithLabel(LABEL_SUBNET, subnet).Get()).items,
};

type ValidateResponse = ReturnType<PeprValidateRequest<MacvlanSubnet>["Approve"]>;

/** Validates a MacvlanSubnet CREATE or UPDATE; anything else is approved. Fails closed. */
export async function validateSubnetRequest(
  req: PeprValidateRequest<MacvlanSubnet>,
  reads: SubnetValidationReads = kfcReads,
): Promise<ValidateResponse> {
  const op = req.Request.operation?.toUpperCase();
  if ((op !== "CREATE" && op !== "UPDATE") || req.Request.subResource) return req.Approve();

  const subnet = req.Raw;
  const name = subnet.metadata?.name || req.Request.name || "";
  let others: MacvlanSubnet[];
  let leases: MacvlanLease[];
  try {
    [others, leases] = await Promise.all([
      reads.listSubnets(),
      name ? reads.listLeases(name) : Promise.resolve([]),
    ]);
  } catch (err) {
    Log.error(
      { err: describe(err), subnet: name },
      "MacvlanSubnet validation could not read the cluster",
    );
    return req.Deny(
      `MacvlanSubnet ${JSON.stringify(name)} could not be validated: listing subnets and leases failed (${describe(err)}); retry`,
      503,
    );
  }

  const old = op === "UPDATE" ? (req.OldResource as MacvlanSubnet | undefined) : undefined;
  const problems = validateSubnet(subnet, { old, others, leases });
  if (problems.length === 0) return req.Approve();
  Log.info({ subnet: name, problems: problems.map(p => p.code) }, "MacvlanSubnet denied");
  return req.Deny(formatProblems(problems, name || undefined), 422);
}
