// What one API request costs through KFC's fluent API (a new undici Agent, so a new TLS
// connection, per call) and through our port's shared keep-alive pool (capabilities/k8s/transport.ts),
// against a local HTTPS server standing in for the API server (self-signed CA, bearer token).
// Prints per-request latency and how many TLS handshakes the server saw. No cluster needed:
//   npx tsx bench/transport.bench.ts [requests=300] [concurrency=1,16]
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:https";
import { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const requests = Number(process.argv[2] ?? 300);
const concurrencies = (process.argv[3] ?? "1,16").split(",").map(Number);

function certificate(dir: string) {
  const key = join(dir, "key.pem");
  const cert = join(dir, "cert.pem");
  execFileSync(
    "openssl",
    [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
      ...["-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1"],
      ...["-addext", "subjectAltName=IP:127.0.0.1"],
    ],
    { stdio: "ignore" },
  );
  return { key: readFileSync(key), cert: readFileSync(cert), certPath: cert };
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "pmv-transport-"));
  const tls = certificate(dir);
  let handshakes = 0;
  const pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "x", namespace: "a" },
  };
  const server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify(pod));
  });
  server.on("secureConnection", () => handshakes++);
  server.keepAliveTimeout = 120_000;
  await new Promise<void>(r => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  const kubeconfig = join(dir, "kubeconfig");
  writeFileSync(
    kubeconfig,
    `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:${port}", certificate-authority: "${tls.certPath}"}}]
users: [{name: u, user: {token: bench}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`,
  );
  process.env.KUBECONFIG = kubeconfig;
  // Imported after KUBECONFIG is set: KFC reads it per call, our transport once.
  const { K8s, kind } = await import("kubernetes-fluent-client");
  const { kfcPort } = await import("../capabilities/k8s/port");
  const { closeTransport } = await import("../capabilities/k8s/transport");

  const ways: [string, () => Promise<unknown>][] = [
    ["KFC K8s().Get (per-call agent)", () => K8s(kind.Pod, { namespace: "a" }).Get("x")],
    ["port.getPod (shared pool)", () => kfcPort.getPod("a", "x")],
  ];
  console.log(`${requests} GETs per row against a local HTTPS server\n`);
  console.log("| client | concurrency | mean ms | p50 ms | p99 ms | TLS handshakes |");
  console.log("| --- | --- | --- | --- | --- | --- |");
  for (const concurrency of concurrencies) {
    for (const [name, call] of ways) {
      await closeTransport();
      handshakes = 0;
      const times: number[] = [];
      let next = 0;
      const worker = async () => {
        while (next++ < requests) {
          const t0 = performance.now();
          await call();
          times.push(performance.now() - t0);
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      times.sort((a, b) => a - b);
      const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
      const mean = times.reduce((a, b) => a + b, 0) / times.length;
      console.log(
        `| ${name} | ${concurrency} | ${mean.toFixed(2)} | ${q(0.5).toFixed(2)} | ${q(0.99).toFixed(2)} | ${handshakes} |`,
      );
    }
  }
  await closeTransport();
  server.closeAllConnections();
  server.close();
  // KFC's per-call agents keep idle sockets for 600 s: do not wait for them.
  process.exit(0);
}

void main();
