#!/usr/bin/env node
// The `kubectl-macvlan` bin (package.json): kubectl finds it on PATH as the `kubectl macvlan`
// plugin; `npx kubectl-macvlan` runs it from the package. Runs the bundle (dist/kubectl-macvlan.cjs,
// built by `npm run build` / `node cli/build.mjs`: fast start); from a source checkout without
// it, the TypeScript through tsx.
const path = require("node:path");
const fs = require("node:fs");
const bundle = path.join(__dirname, "..", "dist", "kubectl-macvlan.cjs");
if (fs.existsSync(bundle)) {
  require(bundle).run();
} else {
  require("tsx/cjs");
  require(path.join(__dirname, "main.ts")).run();
}
