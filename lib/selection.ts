// Which subnet a pod asks for, and whether its namespace may use it (design.md §2, opt-in).
import { LabelSelector, MacvlanSubnet } from "../crds/types";
import { ANN_SUBNET, LABEL_SUBNET } from "./names";

export interface NamespaceInfo {
  name: string;
  labels: Record<string, string>;
}

/** The subnet a pod wants: its own annotation wins over the namespace's opt-in label. */
export function requestedSubnet(
  podAnnotations: Record<string, string> | undefined,
  namespace: NamespaceInfo,
): string | undefined {
  const fromPod = podAnnotations?.[ANN_SUBNET]?.trim();
  if (fromPod) return fromPod;
  return namespace.labels[LABEL_SUBNET]?.trim() || undefined;
}

export function matchesSelector(labels: Record<string, string>, selector: LabelSelector): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[k] !== v) return false;
  }
  for (const req of selector.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, req.key);
    const values = req.values ?? [];
    switch (req.operator) {
      case "In":
        if (!has || !values.includes(labels[req.key])) return false;
        break;
      case "NotIn":
        if (has && values.includes(labels[req.key])) return false;
        break;
      case "Exists":
        if (!has) return false;
        break;
      case "DoesNotExist":
        if (has) return false;
        break;
    }
  }
  return true;
}

/**
 * Whether a namespace may lease from a subnet. With neither `namespaces` nor `namespaceSelector`,
 * any namespace that opted in may; with both, matching either is enough.
 */
export function namespaceAllowed(subnet: MacvlanSubnet, namespace: NamespaceInfo): boolean {
  const list = subnet.spec?.namespaces;
  const selector = subnet.spec?.namespaceSelector;
  if (!list?.length && !selector) return true;
  if (list?.includes(namespace.name)) return true;
  return selector ? matchesSelector(namespace.labels, selector) : false;
}
