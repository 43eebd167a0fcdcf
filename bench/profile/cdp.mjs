// A minimal Chrome DevTools Protocol client for `npm run profile:watcher` (bench/watcher-profile.bench.ts).
// Runs inside the watcher pod's network namespace (nsenter -n), where the inspector that SIGUSR1
// opened listens on 127.0.0.1:<port>. Samples CPU (Profiler) and allocations (HeapProfiler
// sampling) until <stopFile> exists, then writes <out>.cpuprofile, <out>.heapprofile and
// <out>.memory.json (process.memoryUsage() at the start and the end).
// Usage: node --experimental-websocket cdp.mjs <port> <out> <stopFile>
import * as fs from "node:fs";

const [port, out, stopFile] = process.argv.slice(2);
const sleep = ms => new Promise(r => setTimeout(r, ms));

async function target() {
  for (let i = 0; i < 40; i++) {
    try {
      const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
      if (list[0]?.webSocketDebuggerUrl) return list[0].webSocketDebuggerUrl;
    } catch {
      // the inspector is not listening yet
    }
    await sleep(250);
  }
  throw new Error(`no inspector on 127.0.0.1:${port} (was SIGUSR1 sent to the right process?)`);
}

const ws = new WebSocket(await target());
const pending = new Map();
let nextId = 0;
ws.onmessage = e => {
  const m = JSON.parse(e.data);
  const done = pending.get(m.id);
  if (!done) return;
  pending.delete(m.id);
  done(m);
};
const send = (method, params = {}) =>
  new Promise((resolve, reject) => {
    const id = ++nextId;
    pending.set(id, m =>
      m.error ? reject(new Error(`${method}: ${m.error.message}`)) : resolve(m.result),
    );
    ws.send(JSON.stringify({ id, method, params }));
  });
const memory = async () =>
  JSON.parse(
    (await send("Runtime.evaluate", { expression: "JSON.stringify(process.memoryUsage())" })).result
      .value,
  );

await new Promise((resolve, reject) => {
  ws.onopen = resolve;
  ws.onerror = () => reject(new Error("inspector WebSocket failed"));
});
const start = await memory();
await send("Profiler.enable");
await send("Profiler.setSamplingInterval", { interval: 1000 });
await send("Profiler.start");
await send("HeapProfiler.enable");
await send("HeapProfiler.startSampling", { samplingInterval: 32768 });
console.log("profiling");
while (!fs.existsSync(stopFile)) await sleep(500);
const { profile } = await send("Profiler.stop");
const heap = await send("HeapProfiler.stopSampling");
const end = await memory();
fs.writeFileSync(`${out}.cpuprofile`, JSON.stringify(profile));
fs.writeFileSync(`${out}.heapprofile`, JSON.stringify(heap.profile));
fs.writeFileSync(`${out}.memory.json`, JSON.stringify({ start, end }));
ws.close();
console.log("written");
