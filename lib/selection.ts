// Which subnet a pod asks for, and whether its namespace may use it (design.md §2, opt-in).
import { LabelSelector, MacvlanSubnet } from "../crds/types";
import { ANN_SUBNET, LABEL_SUBNET, LABEL_SUBNET_DUAL } from "./names";

export interface NamespaceInfo {
  name: string;
  labels: Record<string, string>;
}

/**
 * The subnets a pod wants, first the one its net1 is named after: its own annotation wins over
 * the namespace's opt-in label. Two names (annotation `lan,lan6`, or the namespace's
 * `macvlan.dev/subnet-dual` label beside `macvlan.dev/subnet`) ask for dual stack; whether the
 * pair is valid (two families, one parent) is admission's to decide. Empty: not opted in.
 */
export function requestedSubnets(
  podAnnotations: Record<string, string> | undefined,
  namespace: NamespaceInfo,
): string[] {
  const fromPod = podAnnotations?.[ANN_SUBNET]?.trim();
  if (fromPod) return fromPod.split(",").map(s => s.trim());
  const primary = namespace.labels[LABEL_SUBNET]?.trim();
  if (!primary) return [];
  const dual = namespace.labels[LABEL_SUBNET_DUAL]?.trim();
  return dual ? [primary, dual] : [primary];
}

/** The subnet a pod's net1 is named after (the first it asks for). */
export function requestedSubnet(
  podAnnotations: Record<string, string> | undefined,
  namespace: NamespaceInfo,
): string | undefined {
  return requestedSubnets(podAnnotations, namespace)[0] || undefined;
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
