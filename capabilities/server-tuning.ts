// Pepr creates its HTTPS server itself (node_modules/pepr lib.js `startServer`) and exposes no
// option for its timeouts. Node closes idle keep-alive connections after 5 s; the API server keeps
// idle webhook connections open much longer (Go's default idle timeout is 90 s) and does not retry
// a POST it wrote to a connection we had just closed ("write: broken pipe", kubernetes#127335).
// So our side must outlive the API server's: every HTTPS server this process creates keeps idle
// connections for WEBHOOK_KEEPALIVE_MS, and the API server is the one that closes them.
import https from "node:https";

/** Longer than the API server's idle timeout for webhook connections (90 s). */
export const WEBHOOK_KEEPALIVE_MS = 120_000;

/** Sets the keep-alive timeouts; headersTimeout must exceed keepAliveTimeout (Node's rule). */
export function tuneServer<S extends { keepAliveTimeout: number; headersTimeout: number }>(
  server: S,
): S {
  server.keepAliveTimeout = WEBHOOK_KEEPALIVE_MS;
  server.headersTimeout = WEBHOOK_KEEPALIVE_MS + 5_000;
  return server;
}

let installed = false;

/** Wraps https.createServer once, before Pepr starts its server. */
export function installServerTuning(): void {
  if (installed) return;
  installed = true;
  const original = https.createServer.bind(https) as (...args: unknown[]) => https.Server;
  (https as { createServer: unknown }).createServer = (...args: unknown[]) =>
    tuneServer(original(...args));
}
