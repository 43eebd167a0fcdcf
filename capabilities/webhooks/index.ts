// Keeps the module's own webhook configurations scoped to opted-in namespaces (lib/webhook-scope.ts).
// `npx pepr deploy` (re)writes them unscoped; the watcher sees that and patches them back, so a
// re-deploy is unscoped for as long as one watch event takes.
import { Capability, K8s, a } from "pepr";
import cfg from "../../package.json";
import { describe } from "../../lib/k8s/errors";
import { scopePatch, webhookConfigurationName } from "../../lib/webhook-scope";

export const Webhooks = new Capability({
  name: "macvlan-webhooks",
  description: "Scopes the module's admission webhooks to namespaces that opted in",
});

const { When } = Webhooks;
const NAME = webhookConfigurationName(cfg.pepr.uuid);

type Config = a.MutatingWebhookConfiguration | a.ValidatingWebhookConfiguration;

async function scope(
  kind: typeof a.MutatingWebhookConfiguration | typeof a.ValidatingWebhookConfiguration,
  config: Config,
): Promise<void> {
  const ops = scopePatch(config as Parameters<typeof scopePatch>[0]);
  if (!ops.length) return;
  try {
    await K8s(kind, { name: NAME }).Patch(ops as never);
    console.log(`scoped ${config.kind ?? "webhook configuration"} ${NAME} to opted-in namespaces`);
  } catch (e) {
    // A 422 is the resourceVersion test: someone wrote it meanwhile and their write's event comes.
    console.warn(`could not scope webhook configuration ${NAME}: ${describe(e)}`);
  }
}

When(a.MutatingWebhookConfiguration)
  .IsCreatedOrUpdated()
  .WithName(NAME)
  .Watch(c => scope(a.MutatingWebhookConfiguration, c));
When(a.ValidatingWebhookConfiguration)
  .IsCreatedOrUpdated()
  .WithName(NAME)
  .Watch(c => scope(a.ValidatingWebhookConfiguration, c));
