// Certificates (openssl, ECDSA P-256) and kubeconfigs for the local cluster.
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { runOk } from "./proc";

export interface CertRequest {
  /** File stem under the PKI directory: <name>.crt and <name>.key. */
  name: string;
  cn: string;
  orgs?: string[];
  client?: boolean;
  server?: boolean;
  dns?: string[];
  ips?: string[];
}

export interface KeyPair {
  cert: string;
  key: string;
}

const DAYS = "3650";

/** openssl req arguments for a fresh, unencrypted ECDSA P-256 key. */
const NEW_EC_KEY = ["-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];

export class Pki {
  constructor(readonly dir: string) {}

  file(name: string): string {
    return path.join(this.dir, name);
  }

  pair(name: string): KeyPair {
    return { cert: this.file(`${name}.crt`), key: this.file(`${name}.key`) };
  }

  /** Creates a self-signed CA `<name>.crt/.key` unless it exists. */
  ca(name: string, cn: string): KeyPair {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const p = this.pair(name);
    if (fs.existsSync(p.cert) && fs.existsSync(p.key)) return p;
    runOk("openssl", [
      "req",
      "-x509",
      "-new",
      ...NEW_EC_KEY,
      "-keyout",
      p.key,
      "-out",
      p.cert,
      "-days",
      DAYS,
      "-subj",
      `/CN=${cn}`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    ]);
    return p;
  }

  /** Issues a leaf certificate signed by CA `caName`. */
  issue(caName: string, req: CertRequest): KeyPair {
    const ca = this.pair(caName);
    const p = this.pair(req.name);
    const csr = this.file(`${req.name}.csr`);
    const ext = this.file(`${req.name}.ext`);
    const subj = [...(req.orgs ?? []).map(o => `/O=${o}`), `/CN=${req.cn}`].join("");
    runOk("openssl", ["req", "-new", ...NEW_EC_KEY, "-keyout", p.key, "-out", csr, "-subj", subj]);
    const usages = [req.server ? "serverAuth" : "", req.client ? "clientAuth" : ""].filter(Boolean);
    const lines = [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      `extendedKeyUsage=${usages.join(",")}`,
    ];
    const sans = [...(req.dns ?? []).map(d => `DNS:${d}`), ...(req.ips ?? []).map(i => `IP:${i}`)];
    if (sans.length) lines.push(`subjectAltName=${sans.join(",")}`);
    fs.writeFileSync(ext, lines.join("\n") + "\n");
    runOk("openssl", [
      "x509",
      "-req",
      "-in",
      csr,
      "-CA",
      ca.cert,
      "-CAkey",
      ca.key,
      "-set_serial",
      `0x${randomBytes(16).toString("hex")}`,
      "-days",
      DAYS,
      "-extfile",
      ext,
      "-out",
      p.cert,
    ]);
    fs.rmSync(csr, { force: true });
    fs.rmSync(ext, { force: true });
    fs.chmodSync(p.key, 0o600);
    return p;
  }

  /** A bare key pair (service-account token signing): <name>.key and <name>.pub. */
  keyPair(name: string): { key: string; pub: string } {
    const key = this.file(`${name}.key`);
    const pub = this.file(`${name}.pub`);
    runOk("openssl", [
      "genpkey",
      "-algorithm",
      "EC",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-out",
      key,
    ]);
    runOk("openssl", ["pkey", "-in", key, "-pubout", "-out", pub]);
    fs.chmodSync(key, 0o600);
    return { key, pub };
  }
}

const b64 = (file: string) => fs.readFileSync(file).toString("base64");

export interface KubeconfigOptions {
  server: string;
  caFile: string;
  user: string;
  /** Client certificate, or a bearer token. */
  clientCert?: KeyPair;
  token?: string;
  namespace?: string;
}

/** Renders a kubeconfig with embedded credentials (portable: it can be copied anywhere). */
export function renderKubeconfig(o: KubeconfigOptions): string {
  const user: Record<string, string> = {};
  if (o.clientCert) {
    user["client-certificate-data"] = b64(o.clientCert.cert);
    user["client-key-data"] = b64(o.clientCert.key);
  }
  if (o.token) user.token = o.token;
  const doc = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      {
        name: "pmv",
        cluster: { server: o.server, "certificate-authority-data": b64(o.caFile) },
      },
    ],
    users: [{ name: o.user, user }],
    contexts: [
      {
        name: "pmv",
        context: {
          cluster: "pmv",
          user: o.user,
          ...(o.namespace ? { namespace: o.namespace } : {}),
        },
      },
    ],
    "current-context": "pmv",
    preferences: {},
  };
  // JSON is valid YAML; kubectl, client-go and @kubernetes/client-node all read it.
  return JSON.stringify(doc, null, 2) + "\n";
}

export function writeKubeconfig(file: string, o: KubeconfigOptions): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, renderKubeconfig(o), { mode: 0o600 });
}
