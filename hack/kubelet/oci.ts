// OCI image archives from local files, for `ctr images import` (no registry, no Docker).
// An archive is an OCI image layout (oci-layout, index.json, blobs/sha256/…) in a tar; each layer
// is an uncompressed tar made by GNU tar from a staging directory, with fixed owners and mtimes
// so the same inputs give the same digests.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runOk } from "../cluster/proc";

export interface LayerSpec {
  /** Owner (uid and gid) of every entry of this layer; default 0. */
  owner?: number;
  /** Fills the staging directory that becomes the layer's root. */
  populate(root: string): void;
}

export interface ImageConfig {
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
  WorkingDir?: string;
  User?: string;
}

export interface ImageSpec {
  /** Fully qualified references, e.g. docker.io/library/busybox:1.36. */
  refs: string[];
  layers: LayerSpec[];
  config: ImageConfig;
}

export interface ImageArchive {
  /** Short name (file name without .tar). */
  name: string;
  refs: string[];
  file: string;
  /** Digest of the image manifest. */
  digest: string;
  bytes: number;
}

export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

function sha256File(file: string): string {
  const h = createHash("sha256");
  const fd = fs.openSync(file, "r");
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return `sha256:${h.digest("hex")}`;
}

const sha256 = (b: Buffer | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** Writes `spec` as an OCI archive to `out` (atomically). */
export function writeImageArchive(name: string, spec: ImageSpec, out: string): ImageArchive {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `pmv-oci-${name}-`));
  try {
    const layout = path.join(work, "layout");
    const blobs = path.join(layout, "blobs", "sha256");
    fs.mkdirSync(blobs, { recursive: true });
    const putBlob = (data: Buffer): { digest: string; size: number } => {
      const digest = sha256(data);
      fs.writeFileSync(path.join(blobs, digest.slice(7)), data);
      return { digest, size: data.length };
    };

    const layers: Array<{ digest: string; size: number }> = [];
    spec.layers.forEach((layer, i) => {
      const root = path.join(work, `layer${i}`);
      fs.mkdirSync(root);
      layer.populate(root);
      const tarFile = path.join(work, `layer${i}.tar`);
      const owner = String(layer.owner ?? 0);
      runOk("tar", [
        "--sort=name",
        "--mtime=@0",
        `--owner=${owner}`,
        `--group=${owner}`,
        "--numeric-owner",
        "--hard-dereference",
        "-cf",
        tarFile,
        "-C",
        root,
        ".",
      ]);
      const digest = sha256File(tarFile);
      const size = fs.statSync(tarFile).size;
      fs.renameSync(tarFile, path.join(blobs, digest.slice(7)));
      fs.rmSync(root, { recursive: true, force: true });
      layers.push({ digest, size });
    });

    const config = putBlob(
      Buffer.from(
        JSON.stringify({
          architecture: "amd64",
          os: "linux",
          config: { Env: [`PATH=${DEFAULT_PATH}`], ...spec.config },
          rootfs: { type: "layers", diff_ids: layers.map(l => l.digest) },
          history: layers.map(() => ({ created_by: "hack/kubelet/images.ts" })),
        }),
      ),
    );
    const manifest = putBlob(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
          layers: layers.map(l => ({ mediaType: "application/vnd.oci.image.layer.v1.tar", ...l })),
        }),
      ),
    );
    // One index entry per reference: `ctr images import` names each image after its
    // io.containerd.image.name annotation.
    const index = {
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: spec.refs.map(ref => ({
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        ...manifest,
        platform: { architecture: "amd64", os: "linux" },
        annotations: {
          "io.containerd.image.name": ref,
          "org.opencontainers.image.ref.name": ref.slice(ref.lastIndexOf(":") + 1),
        },
      })),
    };
    fs.writeFileSync(path.join(layout, "index.json"), JSON.stringify(index));
    fs.writeFileSync(
      path.join(layout, "oci-layout"),
      JSON.stringify({ imageLayoutVersion: "1.0.0" }),
    );

    fs.mkdirSync(path.dirname(out), { recursive: true });
    const tmp = `${out}.${process.pid}.tmp`;
    runOk("tar", [
      "--sort=name",
      "--mtime=@0",
      "--owner=0",
      "--group=0",
      "--numeric-owner",
      "-cf",
      tmp,
      "-C",
      layout,
      "oci-layout",
      "index.json",
      "blobs",
    ]);
    fs.renameSync(tmp, out);
    return {
      name,
      refs: spec.refs,
      file: out,
      digest: manifest.digest,
      bytes: fs.statSync(out).size,
    };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

// ---- helpers for populate() -----------------------------------------------------------------

/** Copies a host file to `dest` (absolute path inside the image). */
export function addFile(root: string, src: string, dest: string, mode?: number): void {
  const to = path.join(root, dest);
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.copyFileSync(fs.realpathSync(src), to);
  fs.chmodSync(to, mode ?? fs.statSync(src).mode & 0o7777);
}

export function addText(root: string, dest: string, text: string, mode = 0o644): void {
  const to = path.join(root, dest);
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.writeFileSync(to, text);
  fs.chmodSync(to, mode);
}

export function addDir(root: string, dest: string, mode = 0o755): void {
  const to = path.join(root, dest);
  fs.mkdirSync(to, { recursive: true });
  fs.chmodSync(to, mode);
}

export function addSymlink(root: string, dest: string, target: string): void {
  const to = path.join(root, dest);
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.symlinkSync(target, to);
}

/** Shared libraries a dynamically linked binary needs (ldd), as absolute host paths. */
export function sharedLibraries(binary: string): string[] {
  const out = runOk("ldd", [binary]);
  const libs = new Set<string>();
  for (const line of out.split("\n")) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.add(m[1]);
  }
  return [...libs];
}

/**
 * Copies a host binary to `dest` and the shared libraries it needs to the same paths in the image
 * (the dynamic loader finds them where ldd found them on the host).
 */
export function addBinaryWithLibraries(root: string, src: string, dest: string): void {
  addFile(root, src, dest, 0o755);
  for (const lib of sharedLibraries(src)) {
    if (!fs.existsSync(path.join(root, lib))) addFile(root, lib, lib, 0o755);
  }
}

/** Copies a host directory tree (cp -a, symlinks kept) to `dest`. */
export function addTree(root: string, src: string, dest: string): void {
  const to = path.join(root, dest);
  fs.mkdirSync(path.dirname(to), { recursive: true });
  runOk("cp", ["-a", src, to]);
}
