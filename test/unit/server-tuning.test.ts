// Webhook keep-alive: our server must not close an idle connection before the API server does.
import test from "ava";
import https from "node:https";
import {
  WEBHOOK_KEEPALIVE_MS,
  drainingClose,
  installServerTuning,
  shutdownDrainMs,
} from "../../capabilities/server-tuning";

test("HTTPS servers created after installation keep idle connections longer than the API server", t => {
  t.is(https.createServer().keepAliveTimeout, 5000, "Node's default, the cause of broken pipes");
  installServerTuning();
  const server = https.createServer();
  t.is(server.keepAliveTimeout, WEBHOOK_KEEPALIVE_MS);
  t.true(WEBHOOK_KEEPALIVE_MS > 90_000, "longer than Go's 90 s idle connection timeout");
  t.true(server.headersTimeout > server.keepAliveTimeout);
});

test("a closing server keeps answering for the drain time, each answer closing its connection", async t => {
  installServerTuning(); // idempotent: the first call's drain time (default 8 s) holds
  const closed: string[] = [];
  // A fake server: what drainingClose needs of one.
  const fake = {
    keepAliveTimeout: 0,
    headersTimeout: 0,
    close(cb?: () => void) {
      closed.push("closed");
      cb?.();
      return fake;
    },
  };
  const drain = drainingClose(fake, 50);
  const seen: boolean[] = [];
  const handler = drain.wrap((_req, res) => seen.push(res.shouldKeepAlive));
  const res = () => ({ shouldKeepAlive: true }) as unknown as import("node:http").ServerResponse;
  const req = {} as import("node:http").IncomingMessage;
  handler(req, res());
  let done = false;
  fake.close(() => (done = true));
  fake.close(); // Pepr or a second signal: no second timer
  t.true(drain.isDraining());
  handler(req, res());
  t.deepEqual(seen, [true, false], "keep-alive before the signal, Connection: close after it");
  t.deepEqual(closed, [], "not closed during the drain");
  await new Promise(r => setTimeout(r, 80));
  t.deepEqual(closed, ["closed"], "closed once, after the drain");
  t.true(done, "Pepr's callback (process.exit) runs after the drain");
});

test("the drain time comes from MACVLAN_SHUTDOWN_DRAIN_SECONDS", t => {
  t.is(shutdownDrainMs({}), 8000);
  t.is(shutdownDrainMs({ MACVLAN_SHUTDOWN_DRAIN_SECONDS: "3" }), 3000);
  t.is(shutdownDrainMs({ MACVLAN_SHUTDOWN_DRAIN_SECONDS: "x" }), 8000);
});
