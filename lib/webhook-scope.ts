// The blast radius of the module's admission webhooks (issue 15): Pepr registers them for every
// namespace but a few, with failurePolicy Fail, so while the module is down nobody in the cluster
// could start a pod. Only namespaces that opted in (label macvlan.dev/subnet) need the webhook; in
// the others the API server itself refuses what the webhook used to refuse there (a pod naming a
// managed NAD or carrying macvlan.dev/* annotations), through the ValidatingAdmissionPolicies in
// deploy/policies.yaml. The namespaceSelector does not apply to cluster-scoped kinds
// (MacvlanSubnets keep going through the webhook).
//
// One source for the selector: the module applies it to the webhook configurations Pepr wrote
// (capabilities/webhooks), the build's post-processing writes it into what `npx pepr build` emits.
import { LabelSelector, LabelSelectorRequirement } from "../crds/types";
import { LABEL_SUBNET } from "./names";

/** The requirement that scopes a webhook to opted-in namespaces. */
export const OPTED_IN: LabelSelectorRequirement = { key: LABEL_SUBNET, operator: "Exists" };

const isOptedIn = (r: LabelSelectorRequirement) =>
  r.key === OPTED_IN.key && r.operator === OPTED_IN.operator;

/** A selector that also requires the opt-in label; Pepr's own requirements are kept. */
export function scopedSelector(selector: LabelSelector | undefined): LabelSelector {
  const expressions = selector?.matchExpressions ?? [];
  if (expressions.some(isOptedIn)) return selector!;
  return { ...(selector ?? {}), matchExpressions: [...expressions, OPTED_IN] };
}

export interface WebhookConfigurationShape {
  metadata?: { name?: string; resourceVersion?: string };
  webhooks?: { name: string; namespaceSelector?: LabelSelector }[];
}

export type JsonPatchOperation =
  | { op: "test"; path: string; value: unknown }
  | { op: "add" | "replace"; path: string; value: unknown };

/**
 * The JSON patch that scopes every webhook of a configuration, guarded by its resourceVersion (a
 * concurrent `pepr deploy` wins and the next watch event decides again); empty when all are scoped.
 */
export function scopePatch(config: WebhookConfigurationShape): JsonPatchOperation[] {
  const ops: JsonPatchOperation[] = [];
  (config.webhooks ?? []).forEach((w, i) => {
    const scoped = scopedSelector(w.namespaceSelector);
    if (scoped === w.namespaceSelector) return;
    ops.push({ op: "add", path: `/webhooks/${i}/namespaceSelector`, value: scoped });
  });
  if (!ops.length) return [];
  const rv = config.metadata?.resourceVersion;
  return rv ? [{ op: "test", path: "/metadata/resourceVersion", value: rv }, ...ops] : ops;
}

/** The names Pepr gives the module's two webhook configurations (`pepr-<uuid>`). */
export const webhookConfigurationName = (uuid: string) => `pepr-${uuid}`;
