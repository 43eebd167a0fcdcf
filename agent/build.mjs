// Bundles the node agent into one file: dist/agent.js (CommonJS, Node 20, dependencies inlined,
// so the image needs only node and iproute2). Usage: node agent/build.mjs [--minify]
import { build } from "esbuild";
import { statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outfile = join(root, "dist", "agent.js");
const t0 = Date.now();
const result = await build({
  absWorkingDir: root,
  entryPoints: ["agent/main.ts"],
  outfile,
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  minify: process.argv.includes("--minify"),
  sourcemap: false,
  legalComments: "none",
  // KFC finds a kind by its class name (model.name): bundling must not rename classes.
  keepNames: true,
  logLevel: "warning",
  // Optional native/peer modules some dependencies probe for at run time.
  external: ["bufferutil", "utf-8-validate"],
  banner: { js: "#!/usr/bin/env node\n// pepr-macvlan node agent (bundled; see agent/main.ts)" },
});
if (result.errors.length) process.exit(1);
const kb = Math.round(statSync(outfile).size / 1024);
console.log(`dist/agent.js ${kb} KiB in ${Date.now() - t0} ms`);
