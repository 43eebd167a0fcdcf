// Keeps the managed NetworkAttachmentDefinition of a subnet in the namespaces that use it. Its
// requests go through the shared transport, which retries transient failures (an apply and a
// delete of a NAD are idempotent).
import { Log } from "pepr";
import { MacvlanSubnet } from "../k8s/kinds";
import { NetworkAttachmentDefinition } from "../k8s/kinds";
import { managedNadName, renderNad, renderNadConfig } from "../../lib/render/nad";
import {
  LABEL_MANAGED_BY,
  LABEL_SUBNET,
  LABEL_SUBNET_DUAL,
  MANAGED_BY,
  subnetsOfNadName,
} from "../../lib/names";
import { describe, isNotFound } from "../../lib/k8s/errors";
import { kubeRequest, paths } from "../k8s/transport";

// namespace/NAD name -> the rendered config the API server had when we last applied it, and when.
// It saves a write per pod in admission; entries expire, so a NAD deleted by hand (or lost with a
// re-created namespace) is applied again by the next pod after the TTL, and by every resync.
const known = new Map<string, { config: string; at: number }>();
const KNOWN_TTL_MS = 30_000;

/** The subnet's NAD in the namespace; with `dual`, the dual-stack pair's (lib/render/nad.ts). */
export async function ensureNad(
  subnet: MacvlanSubnet,
  namespace: string,
  opts: { force?: boolean; dual?: MacvlanSubnet } = {},
): Promise<void> {
  const key = `${namespace}/${managedNadName(subnet, opts.dual)}`;
  const config = renderNadConfig(subnet, opts.dual);
  const seen = known.get(key);
  if (!opts.force && seen?.config === config) {
    if (Date.now() - seen.at < KNOWN_TTL_MS) return;
    // Applied with this config before: admission need not wait for the periodic re-apply (a NAD
    // deleted by hand comes back with it, and with every resync).
    seen.at = Date.now();
    void applyNad(subnet, namespace, key, config, opts.dual).catch(e =>
      Log.warn(`could not re-apply NetworkAttachmentDefinition ${key}: ${describe(e)}`),
    );
    return;
  }
  await applyNad(subnet, namespace, key, config, opts.dual);
}

/** Server-side apply (field manager `pepr`, as KFC's Apply) on the shared connection pool. */
async function applyNad(
  subnet: MacvlanSubnet,
  namespace: string,
  key: string,
  config: string,
  dual?: MacvlanSubnet,
) {
  const nad = renderNad(subnet, namespace, dual);
  const path = nadPath(namespace, nad.metadata.name);
  await kubeRequest("PATCH", path, {
    body: nad,
    contentType: "application/apply-patch+yaml",
    query: { fieldManager: "pepr", fieldValidation: "Strict", force: "true" },
  });
  known.set(key, { config, at: Date.now() });
}

const nadPath = (namespace?: string, name?: string) =>
  paths.group("k8s.cni.cncf.io", "v1", "network-attachment-definitions", namespace, name);

/** A managed NAD was deleted: forget that it exists, so the next ensureNad applies it again. */
export function forgetNad(namespace: string, name: string): void {
  known.delete(`${namespace}/${name}`);
}

/**
 * Removes the managed NADs that name `subnet` (its own, and dual-stack pairs it is part of) and
 * are not in `keep` (`<namespace>/<NAD name>`); returns what it removed.
 */
export async function pruneNads(subnet: string, keep: Set<string>): Promise<string[]> {
  const found = await Promise.all(
    [LABEL_SUBNET, LABEL_SUBNET_DUAL].map(label =>
      kubeRequest<{ items: NetworkAttachmentDefinition[] }>("GET", nadPath(), {
        query: { labelSelector: `${label}=${subnet},${LABEL_MANAGED_BY}=${MANAGED_BY}` },
      }),
    ),
  );
  const removed: string[] = [];
  for (const nad of found.flatMap(f => f.items)) {
    const ns = nad.metadata!.namespace!;
    const name = nad.metadata!.name!;
    const names = subnetsOfNadName(name);
    if (keep.has(`${ns}/${name}`) || !names?.includes(subnet)) continue;
    await kubeRequest("DELETE", nadPath(ns, name)).catch(e => {
      if (!isNotFound(e)) throw e; // a retried delete may find it gone: that is done
    });
    known.delete(`${ns}/${name}`);
    removed.push(`${ns}/${name}`);
    Log.info(`removed unused NetworkAttachmentDefinition ${ns}/${name}`);
  }
  return removed;
}
