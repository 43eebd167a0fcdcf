// Runs the node agent on the local cluster as a user would: agent/deploy/agent.yaml (RBAC and
// the DaemonSet), each node's runtime starting it in the node's network namespace. Images are
// ignored there, so the container command points at the bundle built from agent/.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseAllDocuments } from "yaml";
import { REPO_ROOT, bin, paths } from "../cluster/config";

interface EnvVar {
  name: string;
  value?: string;
}
interface Doc {
  kind: string;
  spec?: { template: { spec: { containers: { command?: string[]; env?: EnvVar[] }[] } } };
}

/** agent/deploy/agent.yaml with the command pointed at dist/agent.js and `env` overrides. */
export function agentManifest(env: Record<string, string> = {}): Doc[] {
  const docs = parseAllDocuments(
    fs.readFileSync(path.join(REPO_ROOT, "agent", "deploy", "agent.yaml"), "utf8"),
  ).map(d => d.toJS() as Doc);
  const container = docs.find(d => d.kind === "DaemonSet")!.spec!.template.spec.containers[0];
  container.command = [process.execPath, path.join(REPO_ROOT, "dist", "agent.js")];
  container.env ??= [];
  for (const [name, value] of Object.entries(env)) {
    const existing = container.env.find(e => e.name === name);
    if (existing) existing.value = value;
    else container.env.push({ name, value });
  }
  return docs;
}

export function buildAgent(): void {
  execFileSync(process.execPath, [path.join(REPO_ROOT, "agent", "build.mjs")], {
    cwd: REPO_ROOT,
    stdio: "inherit",
  });
}

export function deployAgent(env: Record<string, string> = {}): void {
  const input = JSON.stringify({ apiVersion: "v1", kind: "List", items: agentManifest(env) });
  execFileSync(bin("kubectl"), ["--kubeconfig", paths.kubeconfig, "apply", "-f", "-"], {
    input,
    stdio: ["pipe", "inherit", "inherit"],
  });
}

if (require.main === module) {
  const cmd = process.argv[2];
  if (cmd === "up") {
    buildAgent();
    deployAgent();
    execFileSync(
      bin("kubectl"),
      [
        "--kubeconfig",
        paths.kubeconfig,
        "-n",
        "pepr-system",
        "rollout",
        "status",
        "daemonset",
        "--timeout=120s",
      ],
      { stdio: "inherit" },
    );
  } else {
    console.log(
      "usage: npx tsx hack/module/agent.ts up   # build dist/agent.js and apply the agent DaemonSet",
    );
    process.exitCode = cmd ? 1 : 0;
  }
}
