// Sticky ownership: a StatefulSet pod keeps its address across restarts (design.md §3).
import { LeaseOwner } from "../crds/types";

interface OwnedPod {
  metadata?: {
    name?: string;
    namespace?: string;
    ownerReferences?: { kind: string; name: string; uid?: string; controller?: boolean }[];
  };
}

/** The StatefulSet and ordinal a pod belongs to, from its controller reference and name. */
export function stickyOwnerOf(pod: OwnedPod, namespace: string): LeaseOwner | undefined {
  const ref = pod.metadata?.ownerReferences?.find(r => r.controller && r.kind === "StatefulSet");
  const name = pod.metadata?.name;
  if (!ref || !name || !name.startsWith(`${ref.name}-`)) return undefined;
  const suffix = name.slice(ref.name.length + 1);
  if (!/^(0|[1-9][0-9]*)$/.test(suffix)) return undefined;
  return { kind: "StatefulSet", namespace, name: ref.name, uid: ref.uid, ordinal: Number(suffix) };
}

/** A compact key for looking leases up by sticky owner. */
export const ownerKey = (o: Pick<LeaseOwner, "namespace" | "name" | "ordinal">) =>
  `${o.namespace}/${o.name}/${o.ordinal}`;

/**
 * The key of an ordinal's lease in one IP family: a dual-stack ordinal holds one lease per family,
 * and neither supersedes the other (a second lease of the same family does).
 */
export const stickyKey = (
  o: Pick<LeaseOwner, "namespace" | "name" | "ordinal">,
  ipOrCidr: string | undefined,
) => `${ownerKey(o)}/${ipOrCidr?.includes(":") ? 6 : 4}`;

/** Whether a StatefulSet (or its absence) still wants the ordinal held. */
export function ownerStillWants(
  owner: LeaseOwner,
  sts:
    | { metadata?: { uid?: string; deletionTimestamp?: unknown }; spec?: { replicas?: number } }
    | undefined,
): boolean {
  if (!sts || sts.metadata?.deletionTimestamp) return false;
  if (owner.uid && sts.metadata?.uid && owner.uid !== sts.metadata.uid) return false;
  return owner.ordinal < (sts.spec?.replicas ?? 1);
}
