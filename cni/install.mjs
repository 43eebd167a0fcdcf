// Installs the chained CNI plugin shipped in the agent image into the node's CNI bin directory
// (the agent DaemonSet's init container runs it: node /app/install-cni.mjs). Copy, then rename:
// a pod being created on the node may be executing the previous binary right now, and a rename
// never leaves a half-written file behind.
//   CNI_PLUGIN      the binary in the image (default /app/cni/pepr-macvlan-reply)
//   CNI_BIN_DIR     the node's CNI bin directory, mounted from the host (default /host/opt/cni/bin)
import { chmodSync, copyFileSync, existsSync, renameSync } from "node:fs";
import { basename, join } from "node:path";

const source = process.env.CNI_PLUGIN ?? "/app/cni/pepr-macvlan-reply";
const dir = process.env.CNI_BIN_DIR ?? "/host/opt/cni/bin";
if (!existsSync(dir)) {
  console.error(
    `install-cni: ${dir} does not exist: mount the node's CNI bin directory there ` +
      "(hostPath /opt/cni/bin, or where your kubelet's CNI plugins live)",
  );
  process.exit(1);
}
const target = join(dir, basename(source));
const temporary = join(dir, `.${basename(source)}.${process.pid}`);
copyFileSync(source, temporary);
chmodSync(temporary, 0o755);
renameSync(temporary, target);
console.log(`install-cni: ${target} installed`);
