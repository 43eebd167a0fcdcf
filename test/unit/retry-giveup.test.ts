// What happens when KFC gives up on a Pepr binding's watch (PEPR_RESYNC_FAILURE_MAX failures in a
// row, 5 by default): Pepr's GIVE_UP handler throws from KFC's resync timer, an uncaught exception,
// so the module process exits with code 1. In the cluster, Pepr's controller.js (which forked the
// module and does not watch it) then exits too, and the Deployment restarts the container; the
// liveness probe on /healthz is the backstop. Nothing in this module may catch that exception
// (no process.on("uncaughtException")): this test fails if the process survives a give-up.
import test from "ava";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>(r => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as AddressInfo).port;
  await new Promise(r => s.close(r));
  return port;
}

test("a watch Pepr gives up on ends the process with a non-zero code", async t => {
  const dir = mkdtempSync(join(tmpdir(), "pmv-giveup-"));
  const kubeconfig = join(dir, "kubeconfig");
  writeFileSync(
    kubeconfig,
    `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:${await closedPort()}", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`,
  );
  const child = spawnSync("npx", ["tsx", join(__dirname, "helpers", "giveup-child.ts")], {
    env: { ...process.env, KUBECONFIG: kubeconfig },
    encoding: "utf8",
    timeout: 120_000,
  });
  const output = `${child.stdout}\n${child.stderr}`;
  t.false(output.includes("STILL ALIVE"), output.slice(-2000));
  t.is(child.status, 1, output.slice(-2000));
  t.regex(output, /WatchEvent GiveUp Error/);
});
