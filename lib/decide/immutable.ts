// What admission wrote on a pod is immutable afterwards (design.md §2): the Multus annotations and
// every macvlan.dev/* annotation. The module never changes them after admission, so any change
// on a Pod UPDATE is someone else's, and refused.
import { ANN_MULTUS_DEFAULT, ANN_MULTUS_NETWORKS } from "../names";

const PROTECTED_PREFIX = "macvlan.dev/";
const PROTECTED_KEYS = new Set([ANN_MULTUS_NETWORKS, ANN_MULTUS_DEFAULT]);

export const isProtectedAnnotation = (key: string) =>
  key.startsWith(PROTECTED_PREFIX) || PROTECTED_KEYS.has(key);

/** Protected annotation keys that differ between the old and the new pod (added, changed, removed). */
export function protectedChanges(
  before: Record<string, string> | undefined,
  after: Record<string, string> | undefined,
): string[] {
  const keys = new Set([...Object.keys(before ?? {}), ...Object.keys(after ?? {})]);
  return [...keys].filter(k => isProtectedAnnotation(k) && before?.[k] !== after?.[k]).sort();
}

/** The refusal for a Pod UPDATE, or undefined when it leaves the protected annotations alone. */
export function updateRefusal(
  before: Record<string, string> | undefined,
  after: Record<string, string> | undefined,
): string | undefined {
  const changed = protectedChanges(before, after);
  if (!changed.length) return undefined;
  return (
    `the pod's ${changed.join(", ")} annotation${changed.length > 1 ? "s" : ""} cannot change after ` +
    `admission: pepr-macvlan writes them when the pod is created and its lease is the truth; ` +
    `to get another address or subnet, delete the pod and create it with the annotations you want`
  );
}
