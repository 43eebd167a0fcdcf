// Requests to the local cluster's apiserver as someone else: with a ServiceAccount token (e.g. a
// pod-bound one from `kubectl create token --bound-object-kind Pod`), or impersonated by the admin
// (Impersonate-User/-Group/-Extra-* headers, which kubectl's --as/--as-group cannot set for extras).
import * as https from "node:https";
import { paths } from "../../../hack/cluster/config";
import { Kube, loadKubeconfig } from "../../../hack/cluster/kube";

/** A client that authenticates with a bearer token only (no client certificate). */
export function tokenClient(token: string): Kube {
  const admin = loadKubeconfig(paths.kubeconfig);
  return new Kube({ server: admin.server, ca: admin.ca, token });
}

export interface Impersonation {
  user: string;
  groups?: string[];
  /** User-info extras, e.g. {"authentication.kubernetes.io/node-name": ["pmv-node-1"]}. */
  extra?: Record<string, string[]>;
}

export interface RawResponse {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

/**
 * One request by the admin (system:masters may impersonate anyone and any extra) on behalf of
 * `as`. Never throws on HTTP errors: returns the status and parsed body.
 */
export function impersonated(
  as: Impersonation,
  method: string,
  path: string,
  body?: unknown,
  contentType = "application/json",
): Promise<RawResponse> {
  const admin = loadKubeconfig(paths.kubeconfig);
  const url = new URL(admin.server);
  const data = body === undefined ? undefined : JSON.stringify(body);
  // Header values may repeat; node sends an array as repeated headers.
  const headers: Record<string, string | string[]> = {
    Accept: "application/json",
    "Impersonate-User": as.user,
  };
  if (as.groups?.length) headers["Impersonate-Group"] = as.groups;
  for (const [k, v] of Object.entries(as.extra ?? {})) {
    // Extra keys are percent-encoded in the header name ("/" is not a token character).
    headers[`Impersonate-Extra-${encodeURIComponent(k)}`] = v;
  }
  if (data !== undefined) {
    headers["Content-Type"] = contentType;
    headers["Content-Length"] = String(Buffer.byteLength(data));
  }
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        hostname: url.hostname,
        port: url.port || 443,
        path,
        method,
        headers,
        ca: admin.ca,
        cert: admin.cert,
        key: admin.key,
        timeout: 30000,
      },
      res => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: timeout`)));
    req.on("error", reject);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

/** The user info the apiserver sees for a client (SelfSubjectReview, GA in 1.28). */
export async function whoAmI(
  client: Kube,
): Promise<{ username: string; groups?: string[]; extra?: Record<string, string[]> }> {
  const r = await client.create("/apis/authentication.k8s.io/v1/selfsubjectreviews", {
    apiVersion: "authentication.k8s.io/v1",
    kind: "SelfSubjectReview",
  });
  return r.status.userInfo;
}
