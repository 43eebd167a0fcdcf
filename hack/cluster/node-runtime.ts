// The node runtime: one per simulated node, running inside the node's network namespace with the
// node's credentials (system:node:<name>). It stands in for the kubelet's pod part: watches the
// pods bound to its node, creates their network namespaces, calls CNI (Multus) like the kubelet,
// runs the containers' commands, probes them, reports status and finishes deletions.
//
// Usage (started by `hack/cluster.sh up`): node --import tsx hack/cluster/node-runtime.ts <node-name>
import * as fs from "node:fs";
import * as path from "node:path";
import { ClusterInfo, cniBinDir, binDir, nodePaths, paths } from "./config";
import { Kube, runInformer } from "./kube";
import { readJson } from "./proc";
import { EventRecorder } from "./runtime/events";
import { NodeHeartbeat } from "./runtime/node";
import { PodWorker, RuntimeContext } from "./runtime/pod";
import type { Pod } from "./runtime/types";

function main(): void {
  const nodeName = process.argv[2];
  const info = readJson<ClusterInfo>(paths.clusterJson);
  const node = info?.nodes.find(n => n.name === nodeName);
  if (!info || !node) {
    console.error(
      `usage: node-runtime.ts <node>; unknown node "${nodeName}" (no ${paths.clusterJson}?)`,
    );
    process.exit(2);
  }
  const np = nodePaths(node.name);
  const log = (msg: string) => console.log(`${new Date().toISOString()} ${msg}`);
  const kube = Kube.fromKubeconfig(np.kubeconfig);
  const caPem = kube.conn.ca?.toString("utf8") ?? "";
  fs.mkdirSync(np.pods, { recursive: true });

  const ctx: RuntimeContext = {
    kube,
    node,
    paths: np,
    caPem,
    log,
    events: new EventRecorder(kube, node.name, log),
    cni: {
      confDir: np.netd,
      binDirs: [cniBinDir(), binDir()],
      logFile: np.cniLog,
      node: node.name,
    },
  };

  const workers = new Map<string, PodWorker>();
  // Pods this node ran before a restart: adopt them, or clean them up if they are gone.
  for (const uid of fs.readdirSync(np.pods)) {
    const saved = PodWorker.loadState(path.join(np.pods, uid));
    if (saved) workers.set(uid, new PodWorker(ctx, uid, undefined, saved));
    else fs.rmSync(path.join(np.pods, uid), { recursive: true, force: true });
  }
  log(
    `node runtime for ${node.name} (${node.ip}, pod CIDR ${node.podCIDR}) starting; ${workers.size} pod(s) on record`,
  );

  const upsert = (pod: Pod) => {
    const uid = pod.metadata.uid;
    if (!uid) return;
    let w = workers.get(uid);
    if (!w) {
      w = new PodWorker(ctx, uid, pod);
      workers.set(uid, w);
    }
    w.update(pod);
  };
  const sweep = () => {
    for (const [uid, w] of workers) if (w.finished) workers.delete(uid);
  };

  const heartbeat = new NodeHeartbeat(kube, node, log);
  const abort = new AbortController();
  const shutdown = (sig: string) => {
    // Pods keep running (their processes are in their own process groups); a restarted runtime
    // adopts them. `down` stops everything by recorded pid.
    log(`${sig}: node runtime exiting, pods left running`);
    abort.abort();
    heartbeat.stop();
    kube.close();
    setTimeout(() => process.exit(0), 100).unref();
  };
  // A stray rejection must not take the node down (a kubelet does not crash on one failed call).
  process.on("unhandledRejection", err =>
    log(`unhandled rejection: ${err instanceof Error ? err.stack : String(err)}`),
  );
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));

  void heartbeat.start().catch(e => log(`heartbeat: ${String(e)}`));
  setInterval(sweep, 5000).unref();

  void runInformer<Pod>(
    kube,
    "/api/v1/pods",
    { fieldSelector: `spec.nodeName=${node.name}` },
    {
      onSync(items) {
        const seen = new Set<string>();
        for (const p of items) {
          if (p.metadata.uid) seen.add(p.metadata.uid);
          upsert(p);
        }
        for (const [uid, w] of workers) if (!seen.has(uid)) w.markGone();
        log(`synced ${items.length} pod(s) from the apiserver`);
      },
      onEvent(type, pod) {
        if (type === "DELETED") {
          const w = pod.metadata.uid ? workers.get(pod.metadata.uid) : undefined;
          if (w) {
            w.pod = pod;
            w.markGone();
          }
          return;
        }
        upsert(pod);
      },
      onError(err) {
        log(`pod watch: ${String(err)}`);
      },
    },
    abort.signal,
  );
}

main();
