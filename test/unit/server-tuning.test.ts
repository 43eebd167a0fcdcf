// Webhook keep-alive: our server must not close an idle connection before the API server does.
import test from "ava";
import https from "node:https";
import { installServerTuning, WEBHOOK_KEEPALIVE_MS } from "../../capabilities/server-tuning";

test("HTTPS servers created after installation keep idle connections longer than the API server", t => {
  t.is(https.createServer().keepAliveTimeout, 5000, "Node's default, the cause of broken pipes");
  installServerTuning();
  const server = https.createServer();
  t.is(server.keepAliveTimeout, WEBHOOK_KEEPALIVE_MS);
  t.true(WEBHOOK_KEEPALIVE_MS > 90_000, "longer than Go's 90 s idle connection timeout");
  t.true(server.headersTimeout > server.keepAliveTimeout);
});
