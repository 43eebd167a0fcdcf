// Bundles the kubectl plugin into one file, dist/kubectl-macvlan.cjs (CommonJS, Node 20; yaml
// inlined), which cli/kubectl-macvlan.js runs. Usage: node cli/build.mjs
import { build } from "esbuild";
import { statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outfile = join(root, "dist", "kubectl-macvlan.cjs");
const t0 = Date.now();
const result = await build({
  absWorkingDir: root,
  entryPoints: ["cli/main.ts"],
  outfile,
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  minify: true,
  legalComments: "none",
  logLevel: "warning",
});
if (result.errors.length) process.exit(1);
console.log(`dist/kubectl-macvlan.cjs ${Math.round(statSync(outfile).size / 1024)} KiB in ${Date.now() - t0} ms`);
