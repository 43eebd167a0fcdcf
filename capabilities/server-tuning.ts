// Pepr creates its HTTPS server itself (node_modules/pepr lib.js `startServer`) and exposes no
// option for its timeouts or its shutdown. Two webhook failures came from there:
//
// 1. Keep-alive. Node closes idle keep-alive connections after 5 s; the API server keeps idle
//    webhook connections open much longer (Go's default idle timeout is 90 s) and does not retry a
//    POST it wrote to a connection we had just closed ("write: broken pipe", kubernetes#127335).
//    So our side must outlive the API server's: every HTTPS server this process creates keeps idle
//    connections for WEBHOOK_KEEPALIVE_MS, and the API server is the one that closes them.
// 2. Shutdown. On SIGTERM Pepr calls server.close() at once: new connections are refused and idle
//    ones are cut while the API server still lists the pod as an endpoint (a rollout, a scale-down,
//    a drained node). Instead the server drains first: for SHUTDOWN_DRAIN_MS it keeps accepting and
//    answering, but every response says `Connection: close`, so the API server drops each
//    connection cleanly after its answer and opens the next one to a replica that stays; by then
//    the endpoints no longer list this pod. Then Pepr's close() runs as it would have.
import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";

/** Longer than the API server's idle timeout for webhook connections (90 s). */
export const WEBHOOK_KEEPALIVE_MS = 120_000;

/** How long a terminating server keeps answering (MACVLAN_SHUTDOWN_DRAIN_SECONDS, default 8). */
export function shutdownDrainMs(env: NodeJS.ProcessEnv = process.env): number {
  const s = Number(env.MACVLAN_SHUTDOWN_DRAIN_SECONDS ?? "8");
  return Number.isFinite(s) && s >= 0 ? s * 1000 : 8000;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface Tunable {
  keepAliveTimeout: number;
  headersTimeout: number;
  close(callback?: (err?: Error) => void): unknown;
}

/** Sets the keep-alive timeouts; headersTimeout must exceed keepAliveTimeout (Node's rule). */
export function tuneServer<S extends Pick<Tunable, "keepAliveTimeout" | "headersTimeout">>(
  server: S,
): S {
  server.keepAliveTimeout = WEBHOOK_KEEPALIVE_MS;
  server.headersTimeout = WEBHOOK_KEEPALIVE_MS + 5_000;
  return server;
}

/** The drain state of one server: `wrap` the request handler, `drainThenClose` replaces close(). */
export function drainingClose<S extends Tunable>(server: S, drainMs: number) {
  let draining = false;
  const close = server.close.bind(server);
  const wrap =
    (handler: Handler): Handler =>
    (req, res) => {
      if (draining) res.shouldKeepAlive = false;
      handler(req, res);
    };
  server.close = ((callback?: (err?: Error) => void) => {
    if (draining) return server;
    draining = true;
    console.log(`shutting down: answering for ${drainMs} ms more with Connection: close`);
    setTimeout(() => close(callback), drainMs).unref?.();
    return server;
  }) as S["close"];
  return { wrap, isDraining: () => draining };
}

let installed = false;

/** Wraps https.createServer once, before Pepr starts its server. */
export function installServerTuning(drainMs = shutdownDrainMs()): void {
  if (installed) return;
  installed = true;
  const original = https.createServer.bind(https) as (...args: unknown[]) => https.Server;
  (https as { createServer: unknown }).createServer = (...args: unknown[]) => {
    const handlerAt = args.findIndex(a => typeof a === "function");
    const handler = handlerAt >= 0 ? (args[handlerAt] as Handler) : undefined;
    // The server is made with a stand-in handler that defers to the drain wrapper made next.
    const drained: { handle?: Handler } = {};
    if (handler)
      args[handlerAt] = (req: IncomingMessage, res: ServerResponse) => drained.handle!(req, res);
    const server = tuneServer(original(...args));
    const drain = drainingClose(server, drainMs);
    if (handler) drained.handle = drain.wrap(handler);
    return server;
  };
}
