// The plugin's command line: dispatch, --help per command, -o json|yaml|wide, exit codes, and the
// release confirmation, over a fake kubectl (test/unit/helpers/cli-cluster.ts).
import test from "ava";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import YAML from "yaml";
import { Io, main } from "../../cli/main";
import { parseArgs } from "../../cli/args";
import { NOW, fakeKubectl } from "./helpers/cli-cluster";

async function cli(argv: string[], o: { ask?: Io["ask"] } = {}) {
  const { kubectl, applied } = fakeKubectl();
  let out = "";
  let err = "";
  const code = await main(argv, {
    out: s => (out += s),
    err: s => (err += s),
    kubectl,
    now: () => NOW,
    ask: o.ask,
  });
  return { code, out, err, applied };
}

test("no command or help: the command list; an unknown command exits 2", async t => {
  const r = await cli([]);
  t.is(r.code, 0);
  for (const c of ["subnets", "leases", "who-has", "free", "why", "doctor", "release"])
    t.regex(r.out, new RegExp(`^  ${c}`, "m"));
  const bad = await cli(["nope"]);
  t.is(bad.code, 2);
  t.regex(bad.err, /unknown command "nope"/);
});

test("--help for each command", async t => {
  for (const c of ["subnets", "leases", "who-has", "free", "why", "doctor", "release"]) {
    const r = await cli([c, "--help"]);
    t.is(r.code, 0);
    t.regex(r.out, new RegExp(`^usage: kubectl macvlan ${c}`));
  }
});

test("subnets -o json|yaml|wide", async t => {
  const json = JSON.parse((await cli(["subnets", "-o", "json"])).out);
  t.like(json[0], { name: "lan", total: "11", allocated: 3, free: "8" });
  const yaml = YAML.parse((await cli(["subnets", "-o=yaml"])).out);
  t.is(yaml[0].cidr, "198.18.100.0/24");
  const wide = (await cli(["subnets", "-o", "wide"])).out;
  t.regex(wide, /RESERVED\s+BOUND\s+RELEASED\s+POOLED/);
  t.is((await cli(["subnets", "-o", "xml"])).code, 2);
});

test("leases --subnet -n, who-has and free exit codes", async t => {
  const leases = JSON.parse(
    (await cli(["leases", "--subnet", "lan", "-n", "team-a", "-o", "json"])).out,
  );
  t.is(leases.length, 4); // the pool lease belongs to no namespace yet
  t.is((await cli(["who-has", "198.18.100.10"])).code, 0);
  const nobody = await cli(["who-has", "198.18.100.99"]);
  t.is(nobody.code, 1);
  t.regex(nobody.out, /no MacvlanLease holds this address/);
  const free = await cli(["free", "lan", "3"]);
  t.is(free.code, 0);
  t.regex(free.out, /198\.18\.100\.11\s+pool of pepr-system\/pepr-pepr-macvlan-6d9f-abcde/);
  t.is((await cli(["free", "nope"])).code, 1);
  t.is((await cli(["free", "lan", "zero"])).code, 2);
  t.is((await cli(["who-has"])).code, 2);
});

test("why and doctor exit 1 on a problem, 0 when all is well", async t => {
  t.is((await cli(["why", "team-a/web-1"])).code, 0);
  const bad = await cli(["why", "team-a/web-2"]);
  t.is(bad.code, 1);
  t.regex(bad.out, /=> what to do: /);
  t.is((await cli(["why", "team-b/plain"])).code, 0);
  const doc = await cli(["doctor"]);
  t.is(doc.code, 1);
  t.regex(doc.out, /problems found/);
});

test("release: nothing without --force; asks for the IP; --yes for scripts", async t => {
  const dry = await cli(["release", "198.18.100.10"]);
  t.is(dry.code, 2);
  t.deepEqual(dry.applied, []);
  t.regex(dry.err, /add --force/);
  const noTty = await cli(["release", "198.18.100.10", "--force"]);
  t.is(noTty.code, 2);
  t.regex(noTty.err, /add --yes/);
  const wrong = await cli(["release", "198.18.100.10", "--force"], { ask: async () => "no" });
  t.is(wrong.code, 2);
  t.deepEqual(wrong.applied, []);
  const typed = await cli(["release", "198.18.100.10", "--force"], {
    ask: async () => "198.18.100.10",
  });
  t.is(typed.code, 0);
  t.deepEqual(
    typed.applied.map(w => w.op),
    ["setLeaseStatus", "event"],
  );
  const yes = await cli(["release", "198.18.100.10", "--force", "--yes"]);
  t.is(yes.code, 0);
});

test("argument parser: aliases, = values, booleans, a flag without its value", t => {
  t.deepEqual(parseArgs(["leases", "-n", "a", "--subnet=lan", "--force", "x"]), {
    positional: ["leases", "x"],
    flags: { namespace: "a", subnet: "lan", force: true },
  });
  t.throws(() => parseArgs(["-o"]), { message: /-o needs a value/ });
});

test("the bin starts and answers --help without a cluster", t => {
  const bin = path.join(__dirname, "..", "..", "cli", "kubectl-macvlan.js");
  const r = spawnSync(process.execPath, [bin, "why", "--help"], { encoding: "utf8" });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /usage: kubectl macvlan why <namespace>\/<pod>/);
});
