// capabilities/subnets/validate.ts with the cluster reads replaced.
import test from "ava";
import { PeprValidateRequest } from "pepr";

import { SubnetValidationReads, validateSubnetRequest } from "../../capabilities/subnets/validate";
import { MacvlanLease, MacvlanSubnet } from "../../crds/types";

type Admission = ConstructorParameters<typeof PeprValidateRequest<MacvlanSubnet>>[0];

const subnet = (name: string, cidr: string, extra: Record<string, unknown> = {}): MacvlanSubnet =>
  ({
    apiVersion: "macvlan.dev/v1alpha1",
    kind: "MacvlanSubnet",
    metadata: { name },
    spec: { master: "eth0", cidr, ...extra },
  }) as MacvlanSubnet;

const request = (operation: string, object: MacvlanSubnet, oldObject?: MacvlanSubnet) =>
  new PeprValidateRequest<MacvlanSubnet>({
    operation,
    object,
    oldObject,
    name: object.metadata?.name ?? "",
  } as unknown as Admission);

function reads(subnets: MacvlanSubnet[], leases: MacvlanLease[] = []) {
  const asked: string[] = [];
  const r: SubnetValidationReads = {
    listSubnets: async () => subnets,
    listLeases: async name => {
      asked.push(name);
      return leases;
    },
  };
  return { r, asked };
}

test("a valid subnet is approved and its own leases are read", async t => {
  const { r, asked } = reads([subnet("other", "198.18.101.0/24")]);
  const res = await validateSubnetRequest(request("CREATE", subnet("lan", "198.18.100.0/24")), r);
  t.true(res.allowed);
  t.deepEqual(asked, ["lan"]);
});

test("an invalid subnet is denied with every problem in the message", async t => {
  const { r } = reads([subnet("other", "198.18.100.0/25")]);
  const res = await validateSubnetRequest(
    request("CREATE", subnet("lan", "198.18.100.0/24", { gateway: "198.18.200.1" })),
    r,
  );
  t.false(res.allowed);
  t.is(res.statusCode, 422);
  t.regex(
    res.statusMessage!,
    /^MacvlanSubnet "lan" is invalid: spec\.gateway: 198\.18\.200\.1 is outside/,
  );
  t.regex(res.statusMessage!, /spec\.cidr: 198\.18\.100\.0\/24 overlaps MacvlanSubnet "other"/);
});

test("an update that moves the CIDR under leases is denied", async t => {
  const leases = [
    { spec: { subnet: "lan", ip: "198.18.100.7", mac: "02:00:00:00:00:07" } } as MacvlanLease,
  ];
  const { r } = reads([], leases);
  const res = await validateSubnetRequest(
    request("UPDATE", subnet("lan", "198.18.102.0/24"), subnet("lan", "198.18.100.0/24")),
    r,
  );
  t.false(res.allowed);
  t.regex(
    res.statusMessage!,
    /spec\.cidr: cannot change while the subnet has 1 lease: 198\.18\.100\.7/,
  );
});

test("a read failure denies (fail closed) and says to retry", async t => {
  const r: SubnetValidationReads = {
    listSubnets: () => Promise.reject({ status: 400, statusText: "fetch failed" }),
    listLeases: async () => [],
  };
  const res = await validateSubnetRequest(request("CREATE", subnet("lan", "198.18.100.0/24")), r);
  t.false(res.allowed);
  t.is(res.statusCode, 503);
  t.regex(
    res.statusMessage!,
    /could not be validated: .*the API server could not be reached.*retry/,
  );
});

test("DELETE is approved without reading the cluster", async t => {
  const r: SubnetValidationReads = {
    listSubnets: () => Promise.reject(new Error("must not be called")),
    listLeases: () => Promise.reject(new Error("must not be called")),
  };
  const s = subnet("lan", "bad");
  const req = new PeprValidateRequest<MacvlanSubnet>({
    operation: "DELETE",
    oldObject: s,
    name: "lan",
  } as unknown as Admission);
  t.true((await validateSubnetRequest(req, r)).allowed);
});
