// Post-processes the chart `npx pepr build` wrote into the product's one chart (./transforms.ts),
// in place. Run by `npm run build` after hack/module/policies.ts fix-dist.
//   npx tsx hack/chart/build.ts [dist]
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT } from "../cluster/config";
import { parseDocument } from "yaml";
import { ADDED_VALUES, ChartFiles, ChartInputs, TRANSFORMS, transformChart } from "./transforms";

function readTree(root: string, dir = ""): ChartFiles {
  const files: ChartFiles = new Map();
  for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) for (const [k, v] of readTree(root, rel)) files.set(k, v);
    else files.set(rel, fs.readFileSync(path.join(root, rel), "utf8"));
  }
  return files;
}

export function readInputs(dist: string, repo = REPO_ROOT): ChartInputs {
  const manifest = fs.readdirSync(dist).find(f => /^pepr-module-.*\.yaml$/.test(f));
  if (!manifest) throw new Error(`no pepr-module-*.yaml in ${dist}: run npx pepr build first`);
  const crdDir = path.join(repo, "crds");
  return {
    moduleManifest: fs.readFileSync(path.join(dist, manifest), "utf8"),
    crds: Object.fromEntries(
      fs
        .readdirSync(crdDir)
        .filter(f => f.endsWith(".yaml"))
        .map(f => [f, fs.readFileSync(path.join(crdDir, f), "utf8")]),
    ),
    policies: fs.readFileSync(path.join(repo, "deploy", "policies.yaml"), "utf8"),
    agent: fs.readFileSync(path.join(repo, "agent", "deploy", "agent.yaml"), "utf8"),
  };
}

/** Transforms dist/<name>-chart in place; a chart already transformed is left as it is. */
export function buildChart(dist = path.join(REPO_ROOT, "dist")): string {
  const chart = fs.readdirSync(dist).find(f => f.endsWith("-chart"));
  if (!chart) throw new Error(`no *-chart in ${dist}: run npx pepr build first`);
  const root = path.join(dist, chart);
  const before = readTree(root);
  // Transformed when values.yaml has every value the chart adds. (Not "our templates exist":
  // `npx pepr build` rewrites Pepr's own files and leaves ours, so a rebuilt chart has both.)
  const values = parseDocument(before.get("values.yaml") ?? "");
  if (ADDED_VALUES.every(v => values.hasIn(v.path))) return `${chart}: already transformed`;
  const { files, applied } = transformChart(before, readInputs(dist));
  for (const rel of before.keys()) if (!files.has(rel)) fs.rmSync(path.join(root, rel));
  for (const [rel, text] of files) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    if (before.get(rel) !== text) fs.writeFileSync(path.join(root, rel), text);
  }
  return `${chart}: ${applied.join(", ")}`;
}

if (require.main === module) {
  try {
    console.log(`chart: ${buildChart(process.argv[2])} (${TRANSFORMS.length} transforms)`);
  } catch (e) {
    console.error((e as Error).message);
    process.exitCode = 1;
  }
}
