// The port's requests share one keep-alive connection (KFC alone opens one per call), and API
// errors come back in KFC's shape, so lib/k8s/errors.ts reads them alike.
import test from "ava";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, IncomingMessage } from "node:http";
import { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeTransport, kubeRequest, transportStats } from "../../capabilities/k8s/transport";
import { isAlreadyExists, isNotFound } from "../../lib/k8s/errors";

const seen: { method?: string; url?: string; auth?: string; type?: string; body: string }[] = [];
let connections = 0;

const server = createServer((req: IncomingMessage, res) => {
  let body = "";
  req.on("data", c => (body += c));
  req.on("end", () => {
    seen.push({
      method: req.method,
      url: req.url,
      auth: req.headers.authorization,
      type: req.headers["content-type"],
      body,
    });
    res.setHeader("content-type", "application/json");
    if (req.url?.endsWith("/missing")) {
      res.statusCode = 404;
      res.end(JSON.stringify({ kind: "Status", reason: "NotFound", message: "not found" }));
      return;
    }
    if (req.method === "POST") {
      res.statusCode = 409;
      res.end(JSON.stringify({ kind: "Status", reason: "AlreadyExists", message: "exists" }));
      return;
    }
    res.end(JSON.stringify({ metadata: { name: "x" } }));
  });
});
server.on("connection", () => connections++);
server.keepAliveTimeout = 60_000;

test.before(async () => {
  await new Promise<void>(r => server.listen(0, "127.0.0.1", r));
  const dir = mkdtempSync(join(tmpdir(), "pmv-transport-"));
  const file = join(dir, "kubeconfig");
  const port = (server.address() as AddressInfo).port;
  writeFileSync(
    file,
    `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:${port}", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t0k3n}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`,
  );
  process.env.KUBECONFIG = file;
});

test.after.always(async () => {
  await closeTransport();
  server.closeAllConnections();
  server.close();
});

test.serial("sequential requests reuse one connection and one pool", async t => {
  await closeTransport();
  connections = 0;
  for (let i = 0; i < 20; i++) await kubeRequest("GET", "/api/v1/namespaces/a/pods/x");
  // undici may open a second socket while the first is being returned to the pool; never 20.
  t.true(connections <= 2, `${connections} TCP connections for 20 requests`);
  t.deepEqual(transportStats(), { requests: 20, pools: 1, retries: 0 });
  t.is(seen.at(-1)?.auth, "Bearer t0k3n", "KFC's credentials are sent");
});

test.serial("API errors keep KFC's shape", async t => {
  const missing = await kubeRequest("GET", "/api/v1/pods/missing").catch(e => e);
  t.true(isNotFound(missing));
  const taken = await kubeRequest("POST", "/apis/macvlan.dev/v1alpha1/macvlanleases", {
    body: { metadata: { name: "x" } },
  }).catch(e => e);
  t.true(isAlreadyExists(taken));
  t.is(seen.at(-1)?.body, JSON.stringify({ metadata: { name: "x" } }));
});

test.serial("a body's content type and query are sent as given", async t => {
  await kubeRequest("PATCH", "/apis/g/v1/namespaces/a/things/x", {
    body: [{ op: "test", path: "/metadata/uid", value: "u" }],
    contentType: "application/json-patch+json",
    query: { fieldManager: "pepr" },
  });
  t.is(seen.at(-1)?.type, "application/json-patch+json");
  t.is(seen.at(-1)?.url, "/apis/g/v1/namespaces/a/things/x?fieldManager=pepr");
});
