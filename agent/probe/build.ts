// Builds pmv-probe (agent/probe/main.go, standard library only, static) for the agent image, cached
// by the hash of its sources: `go build` needs no module download. Used by hack/kubelet/images.ts;
// agent/Dockerfile builds the same in a Go stage.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const SRC = __dirname;

export function buildProbeHelper(
  cacheDir = path.join(os.homedir(), ".cache", "pepr-macvlan", "probe"),
): string {
  const h = createHash("sha256");
  for (const f of ["go.mod", "main.go"]) h.update(fs.readFileSync(path.join(SRC, f)));
  const out = path.join(cacheDir, `pmv-probe-${h.digest("hex").slice(0, 16)}`);
  if (fs.existsSync(out)) return out;
  fs.mkdirSync(cacheDir, { recursive: true });
  execFileSync("go", ["build", "-trimpath", "-ldflags", "-s -w", "-o", `${out}.tmp`, "."], {
    cwd: SRC,
    env: { ...process.env, CGO_ENABLED: "0", GOFLAGS: "-buildvcs=false" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  fs.renameSync(`${out}.tmp`, out);
  return out;
}
