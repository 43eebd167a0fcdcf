// Keeps the managed NetworkAttachmentDefinition of a subnet in the namespaces that use it.
import { K8s, Log } from "pepr";
import { MacvlanSubnet } from "../k8s/kinds";
import { NetworkAttachmentDefinition } from "../k8s/kinds";
import { renderNad, renderNadConfig } from "../../lib/render/nad";
import { LABEL_MANAGED_BY, LABEL_SUBNET, MANAGED_BY, nadName } from "../../lib/names";

// namespace/subnet -> the rendered config the API server had when we last applied it, and when.
// It saves a write per pod in admission; entries expire, so a NAD deleted by hand (or lost with a
// re-created namespace) is applied again by the next pod after the TTL, and by every resync.
const known = new Map<string, { config: string; at: number }>();
const KNOWN_TTL_MS = 30_000;

export async function ensureNad(
  subnet: MacvlanSubnet,
  namespace: string,
  opts: { force?: boolean } = {},
): Promise<void> {
  const key = `${namespace}/${subnet.metadata!.name}`;
  const config = renderNadConfig(subnet);
  const seen = known.get(key);
  if (!opts.force && seen?.config === config && Date.now() - seen.at < KNOWN_TTL_MS) return;
  await K8s(NetworkAttachmentDefinition).Apply(
    renderNad(subnet, namespace) as NetworkAttachmentDefinition,
    { force: true },
  );
  known.set(key, { config, at: Date.now() });
}

/** A managed NAD was deleted: forget that it exists, so the next ensureNad applies it again. */
export function forgetNad(namespace: string, subnet: string): void {
  known.delete(`${namespace}/${subnet}`);
}

/** Removes managed NADs of `subnet` outside `namespaces`; returns the namespaces it cleaned. */
export async function pruneNads(subnet: string, keep: Set<string>): Promise<string[]> {
  const nads = await K8s(NetworkAttachmentDefinition)
    .WithLabel(LABEL_SUBNET, subnet)
    .WithLabel(LABEL_MANAGED_BY, MANAGED_BY)
    .Get();
  const removed: string[] = [];
  for (const nad of nads.items) {
    const ns = nad.metadata!.namespace!;
    if (keep.has(ns) || nad.metadata?.name !== nadName(subnet)) continue;
    await K8s(NetworkAttachmentDefinition).Delete(nad);
    known.delete(`${ns}/${subnet}`);
    removed.push(ns);
    Log.info(`removed unused NetworkAttachmentDefinition ${ns}/${nad.metadata?.name}`);
  }
  return removed;
}
