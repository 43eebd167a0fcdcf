// Keeps the managed NetworkAttachmentDefinition of a subnet in the namespaces that use it.
import { K8s, Log } from "pepr";
import { MacvlanSubnet } from "../k8s/kinds";
import { NetworkAttachmentDefinition } from "../k8s/kinds";
import { renderNad, renderNadConfig } from "../../lib/render/nad";
import { LABEL_MANAGED_BY, LABEL_SUBNET, MANAGED_BY, nadName } from "../../lib/names";

// namespace/subnet -> rendered config we know the apiserver already has (saves a write per pod).
const known = new Map<string, string>();

export async function ensureNad(subnet: MacvlanSubnet, namespace: string): Promise<void> {
  const key = `${namespace}/${subnet.metadata!.name}`;
  const config = renderNadConfig(subnet);
  if (known.get(key) === config) return;
  await K8s(NetworkAttachmentDefinition).Apply(
    renderNad(subnet, namespace) as NetworkAttachmentDefinition,
    {
      force: true,
    },
  );
  known.set(key, config);
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
