// Container images for the kubelet nodes, built from local files (there is no registry here) and
// imported into each node's containerd:
//   pause       registry.k8s.io/pause:3.10.1        a static Go binary (hack/kubelet/pause)
//   busybox     docker.io/library/busybox:1.36 and :latest   Debian's busybox-static + applet links
//   controller  ghcr.io/defenseunicorns/pepr/controller:v<pepr>   node + production node_modules in /app
//   agent       ghcr.io/pepr-macvlan/agent:<version>  node + iproute2's ip + dist/agent.js + the
//               chained CNI plugin pepr-macvlan-reply and its installer (cni/)
//   kube-proxy  registry.k8s.io/kube-proxy:v1.34.4   kube-proxy (hack/build-binaries.sh) + the host's
//               iptables (xtables multi-binary, its extensions and libraries)
//   coredns     registry.k8s.io/coredns/coredns:v1.15.0   coredns (hack/build-binaries.sh)
// Archives are cached in ~/.cache/pepr-macvlan/kubelet/images and rebuilt when their inputs change.
//
// Usage: node --import tsx hack/kubelet/images.ts build [name...]
//        node --import tsx hack/kubelet/images.ts import [name...] [--node pmv-node-1]...
//        (import needs a running cluster; default: all images, all nodes)
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ClusterInfo, REPO_ROOT, bin, paths } from "../cluster/config";
import { readJson, run, runOk, writeJsonAtomic } from "../cluster/proc";
import { buildProbeHelper } from "../../agent/probe/build";
import {
  AGENT_IMAGE_FALLBACK,
  BUSYBOX_IMAGES,
  COREDNS_IMAGE,
  CONTROLLER_REPO,
  CRI_NAMESPACE,
  KUBELET_CACHE,
  KUBE_PROXY_IMAGE,
  PAUSE_IMAGE,
  kubeletNodePaths,
} from "./config";
import {
  DEFAULT_PATH,
  ImageArchive,
  ImageSpec,
  addBinaryWithLibraries,
  addDir,
  addFile,
  addSymlink,
  addText,
  addTree,
  writeImageArchive,
} from "./oci";

export const IMAGE_NAMES = [
  "pause",
  "busybox",
  "controller",
  "agent",
  "kube-proxy",
  "coredns",
] as const;
export type ImageName = (typeof IMAGE_NAMES)[number];

const IMAGES_DIR = path.join(KUBELET_CACHE, "images");
const PAUSE_SRC = path.join(REPO_ROOT, "hack", "kubelet", "pause");
const NONROOT = 65532;

interface Recipe {
  /** Changes whenever the image would change. */
  key: string;
  /** Builds the spec (may compile or stage files first). */
  spec(): ImageSpec;
}

const hash = (...parts: Array<string | Buffer>) => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p).update("\0");
  return h.digest("hex");
};
const fileHash = (f: string) => hash(fs.readFileSync(f));
const which = (cmd: string) => runOk("bash", ["-c", `command -v ${cmd}`]).trim();
const nodeBinary = () => fs.realpathSync(process.execPath);

const etcFiles = (root: string) => {
  addText(
    root,
    "/etc/passwd",
    `root:x:0:0:root:/root:/bin/sh\nnonroot:x:${NONROOT}:${NONROOT}:nonroot:/home/nonroot:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n`,
  );
  addText(root, "/etc/group", `root:x:0:\nnonroot:x:${NONROOT}:\nnogroup:x:65534:\n`);
  addDir(root, "/tmp", 0o1777);
  addDir(root, "/root", 0o700);
};

/** The image name the generated Pepr manifests use for the controller. */
export function controllerImageRef(): string {
  const dist = path.join(REPO_ROOT, "dist");
  const files = fs.existsSync(dist)
    ? fs.readdirSync(dist).filter(f => /^pepr-module-.*\.yaml$/.test(f))
    : [];
  for (const f of files) {
    const m = new RegExp(
      `image:\\s*['"]?(${CONTROLLER_REPO.replace(/\./g, "\\.")}:[^\\s'"]+)`,
    ).exec(fs.readFileSync(path.join(dist, f), "utf8"));
    if (m) return m[1];
  }
  const pepr = readJson<{ version: string }>(
    path.join(REPO_ROOT, "node_modules", "pepr", "package.json"),
  );
  return `${CONTROLLER_REPO}:v${pepr?.version ?? "1.1.4"}`;
}

/** The agent's image name from agent/deploy/agent.yaml. */
export function agentImageRef(): string {
  const f = path.join(REPO_ROOT, "agent", "deploy", "agent.yaml");
  const m = fs.existsSync(f)
    ? /image:\s*['"]?([^\s'"]*agent[^\s'"]*)/.exec(fs.readFileSync(f, "utf8"))
    : null;
  return m?.[1] ?? AGENT_IMAGE_FALLBACK;
}

function agentBundle(): string {
  const out = path.join(REPO_ROOT, "dist", "agent.js");
  const srcDir = path.join(REPO_ROOT, "agent");
  const newest = Math.max(
    // Recursive: the planner's phases and the prober live in agent/phases and agent/probe.
    ...(fs.readdirSync(srcDir, { recursive: true }) as string[])
      .filter(f => f.endsWith(".ts"))
      .map(f => fs.statSync(path.join(srcDir, f)).mtimeMs),
  );
  if (!fs.existsSync(out) || fs.statSync(out).mtimeMs < newest) {
    runOk(process.execPath, [path.join(srcDir, "build.mjs")], { cwd: REPO_ROOT });
  }
  return out;
}

/** The iptables and ip6tables commands kube-proxy runs, all links to one xtables multi-binary. */
const IPTABLES_COMMANDS = ["iptables", "ip6tables"].flatMap(c => [c, `${c}-save`, `${c}-restore`]);

/** The host's iptables: the multi-binary `iptables` resolves to (nft or legacy) and its extensions. */
function hostIptables(): { multi: string; extensions: string[] } {
  const multi = fs.realpathSync(which("iptables"));
  const dir = ["/usr/lib/x86_64-linux-gnu/xtables", "/usr/lib/xtables"].find(d => fs.existsSync(d));
  if (!dir) throw new Error("no xtables extension directory: apt-get install iptables");
  const extensions = fs
    .readdirSync(dir)
    .filter(f => f.endsWith(".so"))
    .sort()
    .map(f => path.join(dir, f));
  return { multi, extensions };
}

/** A statically linked binary from hack/build-binaries.sh, or an error that says how to get it. */
function builtBinary(name: string): string {
  const file = bin(name);
  if (!fs.existsSync(file)) throw new Error(`missing ${file}: run hack/build-binaries.sh`);
  return file;
}

function kubeProxyRecipe(): Recipe {
  const kubeProxy = builtBinary("kube-proxy");
  const ipt = hostIptables();
  const inputs = [kubeProxy, ipt.multi, ...ipt.extensions];
  return {
    key: hash(KUBE_PROXY_IMAGE, ...inputs.map(f => `${f}:${fileHash(f)}`)),
    spec: () => ({
      refs: [KUBE_PROXY_IMAGE],
      layers: [
        {
          populate: root => {
            addFile(root, kubeProxy, "/usr/local/bin/kube-proxy", 0o755);
            const multi = `/usr/sbin/${path.basename(ipt.multi)}`;
            addBinaryWithLibraries(root, ipt.multi, multi);
            for (const c of IPTABLES_COMMANDS) addSymlink(root, `/usr/sbin/${c}`, multi);
            // Extensions are loaded at run time (-m conntrack, -j DNAT, …) from the same path.
            for (const ext of ipt.extensions) addBinaryWithLibraries(root, ext, ext);
            for (const f of ["/etc/protocols", "/etc/services", "/etc/ethertypes"])
              if (fs.existsSync(f)) addFile(root, f, f, 0o644);
            etcFiles(root);
            addDir(root, "/run");
          },
        },
      ],
      config: { Entrypoint: ["/usr/local/bin/kube-proxy"] },
    }),
  };
}

function corednsRecipe(): Recipe {
  const coredns = builtBinary("coredns");
  return {
    key: hash(COREDNS_IMAGE, fileHash(coredns)),
    spec: () => ({
      refs: [COREDNS_IMAGE],
      layers: [
        {
          populate: root => {
            addFile(root, coredns, "/coredns", 0o755);
            etcFiles(root);
          },
        },
      ],
      config: { Entrypoint: ["/coredns"] },
    }),
  };
}

function recipes(): Record<ImageName, () => Recipe> {
  return {
    pause: () => {
      const goVersion = runOk("go", ["version"]).trim();
      return {
        key: hash(
          PAUSE_IMAGE,
          goVersion,
          ...["main.go", "go.mod"].map(f => fs.readFileSync(path.join(PAUSE_SRC, f))),
        ),
        spec: () => {
          const bin = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pmv-pause-")), "pause");
          runOk("go", ["build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "."], {
            cwd: PAUSE_SRC,
            env: { ...process.env, CGO_ENABLED: "0", GOFLAGS: "-buildvcs=false" },
          });
          return {
            refs: [PAUSE_IMAGE],
            layers: [
              {
                populate: root => {
                  addFile(root, bin, "/pause", 0o755);
                  fs.rmSync(path.dirname(bin), { recursive: true, force: true });
                },
              },
            ],
            config: { Entrypoint: ["/pause"], User: "65535:65535" },
          };
        },
      };
    },

    busybox: () => {
      const bb = fs.realpathSync(which("busybox"));
      return {
        key: hash(...BUSYBOX_IMAGES, fileHash(bb)),
        spec: () => ({
          refs: BUSYBOX_IMAGES,
          layers: [
            {
              populate: root => {
                addFile(root, bb, "/bin/busybox", 0o755);
                const applets = runOk(bb, ["--list-full"]).split("\n").filter(Boolean);
                for (const a of applets) {
                  const dest = `/${a}`;
                  if (dest === "/bin/busybox" || fs.existsSync(path.join(root, dest))) continue;
                  addSymlink(root, dest, "/bin/busybox");
                }
                etcFiles(root);
                addDir(root, "/var/www");
              },
            },
          ],
          config: { Cmd: ["sh"] },
        }),
      };
    },

    controller: () => {
      const ref = controllerImageRef();
      const node = nodeBinary();
      const lock = path.join(REPO_ROOT, "package-lock.json");
      return {
        key: hash(ref, fileHash(node), fileHash(lock)),
        spec: () => ({
          refs: [ref],
          layers: [
            {
              populate: root => {
                addBinaryWithLibraries(root, node, "/usr/local/bin/node");
                etcFiles(root);
                addDir(root, "/home/nonroot");
              },
            },
            {
              // The module's production dependencies (pepr and what it requires) in /app/node_modules,
              // like the published image; dev dependencies are pruned from a copy.
              populate: root => {
                const app = path.join(root, "app");
                fs.mkdirSync(app);
                for (const f of ["package.json", "package-lock.json"])
                  fs.copyFileSync(path.join(REPO_ROOT, f), path.join(app, f));
                addTree(root, path.join(REPO_ROOT, "node_modules"), "/app/node_modules");
                runOk(
                  "npm",
                  [
                    "prune",
                    "--omit=dev",
                    "--offline",
                    "--ignore-scripts",
                    "--no-audit",
                    "--no-fund",
                    "--loglevel=error",
                  ],
                  { cwd: app },
                );
                for (const f of ["package.json", "package-lock.json"]) fs.rmSync(path.join(app, f));
              },
            },
            {
              // controller.js writes the unpacked module to /app as the non-root user.
              owner: NONROOT,
              populate: root => addDir(root, "/app", 0o755),
            },
          ],
          config: {
            Entrypoint: ["node"],
            WorkingDir: "/app",
            User: `${NONROOT}:${NONROOT}`,
            Env: [`PATH=${DEFAULT_PATH}`, "NODE_ENV=production"],
          },
        }),
      };
    },

    agent: () => {
      const ref = agentImageRef();
      const node = nodeBinary();
      const ipBin = fs.realpathSync(which("ip"));
      const bundle = agentBundle();
      const plugin = builtBinary("cni/pepr-macvlan-reply");
      const installer = path.join(REPO_ROOT, "cni", "install.mjs");
      const probe = buildProbeHelper();
      return {
        key: hash(ref, ...[node, ipBin, bundle, plugin, installer, probe].map(fileHash)),
        spec: () => ({
          refs: [ref],
          layers: [
            {
              populate: root => {
                addBinaryWithLibraries(root, node, "/usr/local/bin/node");
                addBinaryWithLibraries(root, ipBin, "/usr/sbin/ip");
                addSymlink(root, "/sbin/ip", "/usr/sbin/ip");
                addSymlink(root, "/bin/ip", "/usr/sbin/ip");
                etcFiles(root);
                addFile(root, bundle, "/app/agent.js", 0o644);
                // The chained CNI plugin and its installer (the DaemonSet's init container).
                addFile(root, plugin, "/app/cni/pepr-macvlan-reply", 0o755);
                addFile(root, installer, "/app/install-cni.mjs", 0o644);
                addFile(root, probe, "/usr/local/bin/pmv-probe", 0o755);
              },
            },
          ],
          config: {
            Entrypoint: ["node", "/app/agent.js"],
            WorkingDir: "/app",
            Env: [`PATH=${DEFAULT_PATH}`, "NODE_ENV=production"],
          },
        }),
      };
    },

    "kube-proxy": kubeProxyRecipe,
    coredns: corednsRecipe,
  };
}

interface CacheEntry extends ImageArchive {
  key: string;
}

/** Builds (or reuses from the cache) the archives of the named images. */
export function buildImages(
  names: readonly ImageName[] = IMAGE_NAMES,
  log: (msg: string) => void = () => undefined,
): ImageArchive[] {
  fs.mkdirSync(IMAGES_DIR, { recursive: true });
  const all = recipes();
  return names.map(name => {
    const r = all[name]();
    const meta = path.join(IMAGES_DIR, `${name}.json`);
    const cached = readJson<CacheEntry>(meta);
    if (cached?.key === r.key && fs.existsSync(cached.file)) return cached;
    const t0 = Date.now();
    const archive = writeImageArchive(name, r.spec(), path.join(IMAGES_DIR, `${name}.tar`));
    writeJsonAtomic(meta, { ...archive, key: r.key });
    log(
      `image ${name}: ${archive.refs.join(", ")} (${(archive.bytes / 2 ** 20).toFixed(1)} MiB) built in ${((Date.now() - t0) / 1000).toFixed(1)}s`,
    );
    return archive;
  });
}

/** `ctr` against one node's containerd, in the CRI namespace. */
export function ctr(sock: string, args: string[], timeoutMs = 120000) {
  return run("ctr", ["--address", sock, "--namespace", CRI_NAMESPACE, ...args], { timeoutMs });
}

/**
 * Imports archives into a node's containerd, without unpacking: the CRI plugin unpacks an image
 * for the overlayfs snapshotter when it first creates a container from it.
 */
export function importImages(sock: string, archives: ImageArchive[]): void {
  for (const a of archives) {
    const r = ctr(sock, ["images", "import", "--no-unpack", a.file]);
    if (r.code !== 0)
      throw new Error(`ctr images import ${a.file} failed: ${(r.stderr || r.stdout).trim()}`);
  }
  const have = ctr(sock, ["images", "ls", "-q"]).stdout.split("\n");
  const missing = archives.flatMap(a => a.refs).filter(ref => !have.includes(ref));
  if (missing.length) throw new Error(`images missing after import: ${missing.join(", ")}`);
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const nodes: string[] = [];
  const names: ImageName[] = [];
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === "--node") nodes.push(rest[++i]);
    else if ((IMAGE_NAMES as readonly string[]).includes(rest[i])) names.push(rest[i] as ImageName);
    else throw new Error(`unknown argument ${rest[i]} (images: ${IMAGE_NAMES.join(", ")})`);
  }
  const log = (m: string) => console.log(m);
  const archives = buildImages(names.length ? names : IMAGE_NAMES, log);
  if (cmd === "build") {
    for (const a of archives) console.log(`${a.file}  ${a.refs.join(" ")}  ${a.digest}`);
    return 0;
  }
  if (cmd === "import") {
    const info = readJson<ClusterInfo>(paths.clusterJson);
    if (!info) throw new Error("no cluster: run `npm run cluster -- up` first");
    const targets = nodes.length ? nodes : info.nodes.map(n => n.name);
    for (const n of targets) {
      const sock = kubeletNodePaths(n).containerdSock;
      if (!fs.existsSync(sock)) throw new Error(`${n} has no containerd (${sock})`);
      importImages(sock, archives);
      log(`${n}: imported ${archives.map(a => a.name).join(", ")}`);
    }
    return 0;
  }
  throw new Error("usage: images.ts build|import [name...] [--node <node>]...");
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    code => process.exit(code),
    (err: unknown) => {
      console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
}
