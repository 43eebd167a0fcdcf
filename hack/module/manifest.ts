// The module's install manifest, built once per change of its sources. `npx pepr deploy` builds
// the whole module again on every call (tsc over the repository, then esbuild: 40–100 s here);
// the integration tests install the module once per test file, so they apply the manifest that
// `npm run build` makes (README: `kubectl apply -f dist/pepr-module-pepr-macvlan.yaml` installs
// the same module) and rebuild it only when a source file changed. deploy-kubelet.test.ts and the
// demo keep installing with `npx pepr deploy`.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseAllDocuments, stringify } from "yaml";
import { REPO_ROOT } from "../cluster/config";
import { runAsync } from "../cluster/proc";
import { fixDist } from "./policies";

export const DIST = path.join(REPO_ROOT, "dist");
export const MODULE_MANIFEST = path.join(DIST, "pepr-module-pepr-macvlan.yaml");
const STAMP = path.join(DIST, ".module-sources.sha256");

/** What the module is built from (tests and tools are not part of it), and fix-dist. */
const SOURCES = [
  "pepr.ts",
  "hack/module/policies.ts",
  "package.json",
  "package-lock.json",
  "tsconfig.json",
  "capabilities",
  "lib",
  "crds",
];

function files(p: string): string[] {
  const full = path.join(REPO_ROOT, p);
  if (!fs.existsSync(full)) return [];
  if (!fs.statSync(full).isDirectory()) return [p];
  return fs
    .readdirSync(full)
    .sort()
    .flatMap(f => files(path.join(p, f)));
}

/** A hash over the module's source files, their paths and contents. */
export function sourcesHash(): string {
  const h = createHash("sha256");
  for (const f of SOURCES.flatMap(files))
    h.update(f)
      .update("\0")
      .update(fs.readFileSync(path.join(REPO_ROOT, f)));
  return h.digest("hex");
}

/**
 * dist/pepr-module-pepr-macvlan.yaml for the current sources: `npx pepr build` and fix-dist
 * (scoped webhooks, no dangling store RBAC) when the sources changed since the last build.
 */
export async function ensureModuleBuilt(
  log: (m: string) => void,
): Promise<{ built: boolean; seconds: number }> {
  const want = sourcesHash();
  const have = fs.existsSync(STAMP) ? fs.readFileSync(STAMP, "utf8").trim() : "";
  if (have === want && fs.existsSync(MODULE_MANIFEST)) return { built: false, seconds: 0 };
  const t0 = Date.now();
  log("npx pepr build (the module's sources changed since the last build)");
  const r = await runAsync("npx", ["--no-install", "pepr", "build"], {
    cwd: REPO_ROOT,
    timeoutMs: 600_000,
  });
  const output = `${r.stdout}\n${r.stderr}`;
  // pepr build can report a failed tsc and still exit 0.
  if (r.code !== 0 || /Error building/.test(output) || !fs.existsSync(MODULE_MANIFEST))
    throw new Error(`npx pepr build failed (exit ${r.code}):\n${output.slice(-6000)}`);
  fixDist(DIST);
  fs.writeFileSync(STAMP, want + "\n");
  return { built: true, seconds: (Date.now() - t0) / 1000 };
}

/** The manifest with extra environment on both Deployments' containers (one rollout, not two). */
export function manifestWithEnv(text: string, env: Record<string, string>): string {
  if (!Object.keys(env).length) return text;
  return parseAllDocuments(text)
    .map(d => {
      const obj = d.toJS();
      if (obj?.kind === "Deployment") {
        for (const c of obj.spec.template.spec.containers as {
          env?: { name: string; value?: string }[];
        }[]) {
          const rest = (c.env ?? []).filter(e => !(e.name in env));
          c.env = [...rest, ...Object.entries(env).map(([name, value]) => ({ name, value }))];
        }
      }
      return stringify(obj);
    })
    .join("---\n");
}

/** `npx pepr deploy` rebuilt dist/ without fix-dist: the next manifest install builds again. */
export function invalidateModuleBuild(): void {
  fs.rmSync(STAMP, { force: true });
}

if (require.main === module) {
  if (process.argv[2] !== "build") {
    console.log("usage: npx tsx hack/module/manifest.ts build   (dist/ for the current sources)");
    process.exitCode = 1;
  } else {
    ensureModuleBuilt(m => console.log(m)).then(
      b =>
        console.log(
          b.built ? `module built in ${b.seconds.toFixed(1)} s` : "module build is current",
        ),
      e => {
        console.error(e instanceof Error ? e.message : e);
        process.exitCode = 1;
      },
    );
  }
}
