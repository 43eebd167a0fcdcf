// Transient failures through the real transport (KFC's fetch on our connection pool) against an
// HTTP server that misbehaves on cue: refuses, answers 503, hangs, or drops the connection after
// creating the object. Checks what KFC really throws and that the port retries or reports it
// as "the API server could not be reached", never as a bad request.
import test from "ava";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, IncomingMessage, ServerResponse } from "node:http";
import { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeTransport, kubeRequest, transportStats } from "../../capabilities/k8s/transport";
import { kfcPort } from "../../capabilities/k8s/port";
import { describe, isTransient, isTransportFailure, statusOf } from "../../lib/k8s/errors";
import { withDeadline } from "../../lib/k8s/retry";
import { lease } from "./helpers/objects";

type Step = "ok" | "503" | "hang" | "drop-after-create" | "409" | "429";
let script: Step[] = [];
const stored = new Map<string, string>();
let requests = 0;

function answer(req: IncomingMessage, res: ServerResponse, body: string): unknown {
  const step = script.shift() ?? "ok";
  requests++;
  res.setHeader("content-type", "application/json");
  const name = req.url!.split("/").pop()!;
  if (step === "hang") return undefined; // never answers: the attempt timeout must end it
  if (step === "503") {
    res.statusCode = 503;
    return res.end(JSON.stringify({ kind: "Status", message: "etcdserver: leader changed" }));
  }
  if (step === "429") {
    res.statusCode = 429;
    res.setHeader("retry-after", "0");
    return res.end(JSON.stringify({ kind: "Status", message: "too many requests" }));
  }
  if (req.method === "POST") {
    const obj = JSON.parse(body);
    if (stored.has(obj.metadata.name) || step === "409") {
      res.statusCode = 409;
      return res.end(
        JSON.stringify({ kind: "Status", reason: "AlreadyExists", message: "exists" }),
      );
    }
    stored.set(
      obj.metadata.name,
      JSON.stringify({ ...obj, metadata: { ...obj.metadata, uid: "u1" } }),
    );
    if (step === "drop-after-create") return req.socket.destroy(); // created, answer lost
    res.statusCode = 201;
    return res.end(stored.get(obj.metadata.name));
  }
  if (req.method === "GET" && stored.has(name)) return res.end(stored.get(name));
  if (req.method === "GET" && name !== "macvlanleases") {
    res.statusCode = 404;
    return res.end(JSON.stringify({ kind: "Status", reason: "NotFound", message: "not found" }));
  }
  return res.end(JSON.stringify({ items: [] }));
}

const server = createServer((req, res) => {
  let body = "";
  req.on("data", c => (body += c));
  req.on("end", () => answer(req, res, body));
});

function kubeconfig(port: number) {
  const dir = mkdtempSync(join(tmpdir(), "pmv-retry-"));
  const file = join(dir, "kubeconfig");
  writeFileSync(
    file,
    `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:${port}", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`,
  );
  return file;
}

test.before(async () => {
  await new Promise<void>(r => server.listen(0, "127.0.0.1", r));
  process.env.KUBECONFIG = kubeconfig((server.address() as AddressInfo).port);
});

test.after.always(async () => {
  await closeTransport();
  server.closeAllConnections();
  server.close();
});

test.beforeEach(async () => {
  await closeTransport();
  script = [];
  stored.clear();
  requests = 0;
});

test.serial(
  "KFC reports a refused connection as status 400 'fetch failed'; we read it as unreachable",
  async t => {
    const closed = createServer();
    await new Promise<void>(r => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise(r => closed.close(r));
    const refused = kubeconfig(port); // nothing listens there any more
    const saved = process.env.KUBECONFIG;
    process.env.KUBECONFIG = refused;
    await closeTransport();
    try {
      const e = await kubeRequest("GET", "/api/v1/namespaces/x", { retry: false }).catch(x => x);
      t.is(statusOf(e), 400, "KFC's status for a network failure");
      t.true(isTransportFailure(e));
      t.is(describe(e), "the API server could not be reached (ECONNREFUSED); retry");
    } finally {
      process.env.KUBECONFIG = saved;
      await closeTransport();
    }
  },
);

test.serial("503, 503, then 200: the read succeeds after two retries", async t => {
  script = ["503", "503", "ok"];
  t.deepEqual(await kfcPort.listLeases(), []);
  t.is(requests, 3);
  t.is(transportStats().retries, 2);
});

test.serial("429 with Retry-After is retried; a 404 is answered at once, not retried", async t => {
  script = ["429", "ok"];
  t.deepEqual(await kfcPort.listLeases(), []);
  t.is(requests, 2);
  requests = 0;
  t.is(await kfcPort.getLease("missing"), undefined);
  t.is(requests, 1);
});

test.serial(
  "a hung request is abandoned by its timeout and retried inside the request's budget",
  async t => {
    script = ["hang", "ok"];
    const started = Date.now();
    // Admission's attempt timeout is 3 s; a budget of 1.5 s cuts the first attempt at 1.5 s ...
    const e = await withDeadline(1500, () => kfcPort.listLeases()).catch(x => x);
    const ms = Date.now() - started;
    t.true(ms < 2500, `gave up after ${ms} ms`);
    t.true(isTransient(e));
    t.is(describe(e), "the API server did not answer in time (timeout); retry");
    // ... while without a tight budget the hung attempt times out and the retry succeeds.
    script = ["hang", "ok"];
    await closeTransport();
    t.deepEqual(await kfcPort.listLeases(), []);
  },
);

test.serial(
  "a create whose answer was lost is retried, finds its own lease and succeeds",
  async t => {
    script = ["drop-after-create"];
    const sent = lease({ token: "mine" });
    delete sent.metadata!.uid;
    const created = await kfcPort.createLease(sent);
    t.is(created.metadata?.uid, "u1", "the lease the first attempt created");
    t.is(created.metadata?.annotations?.["macvlan.dev/reservation"], "mine");
  },
);

test.serial("a create that finds someone else's lease fails with 409, retried or not", async t => {
  stored.set(lease().metadata!.name!, JSON.stringify(lease({ token: "someone-else" })));
  script = ["503"]; // first attempt unavailable, the retry meets the other holder
  const e = await kfcPort.createLease(lease({ token: "mine" })).catch(x => x);
  t.is(statusOf(e), 409);
  t.false(isTransient(e));
});

test.serial(
  "a name no object can have is not sent: '::/0' would ask for a subresource (403)",
  async t => {
    t.is(await kfcPort.getSubnet("::/0"), undefined);
    t.is(await kfcPort.getPod("fz-in", "../x"), undefined);
    t.is(requests, 0, "no request made");
    t.is(await kfcPort.getSubnet("lan"), undefined, "a possible name is asked for (404 here)");
    t.is(requests, 1);
  },
);
