// Keeps `<svc>-macvlan` and its EndpointSlice in step with the ready pods a Service selects.
import { a, K8s, Log } from "pepr";
import { ANN_EXPOSE, ANN_IP } from "../../lib/names";
import {
  ADDRESS_TYPES,
  macvlanServiceName,
  sliceName,
  PodView,
  renderEndpointSlice,
  renderHeadlessService,
  selects,
  ServiceView,
} from "../../lib/render/endpoints";
import { getIfExists } from "../../lib/k8s/errors";
import { MacvlanLease } from "../k8s/kinds";
import { cachedLeasesFor, watchCaches } from "../watch-caches";

const isExposed = (svc: a.Service) => svc.metadata?.annotations?.[ANN_EXPOSE] === "true";

function serviceView(svc: a.Service): ServiceView {
  return {
    name: svc.metadata!.name!,
    namespace: svc.metadata!.namespace!,
    uid: svc.metadata!.uid!,
    selector: svc.spec?.selector ?? {},
    ports: (svc.spec?.ports ?? []).map(p => ({
      name: p.name,
      port: p.port,
      protocol: p.protocol,
      targetPort: p.targetPort as number | string | undefined,
    })),
  };
}

/** The pod's addresses as its Bound leases record them: never what the pod's annotations claim. */
export function boundAddressesOf(pod: a.Pod, leases: Iterable<MacvlanLease>): string[] {
  const uid = pod.metadata?.uid;
  if (!uid) return [];
  const out: string[] = [];
  for (const lease of leases) {
    if (lease.spec?.podRef?.uid === uid && lease.status?.phase === "Bound") out.push(lease.spec.ip);
  }
  return out;
}

export function podView(
  pod: a.Pod,
  leases: Iterable<MacvlanLease> = watchCaches.leases.list(),
): PodView {
  return {
    name: pod.metadata!.name!,
    namespace: pod.metadata!.namespace!,
    uid: pod.metadata!.uid!,
    labels: pod.metadata?.labels ?? {},
    ips: boundAddressesOf(pod, leases),
    ready:
      !pod.metadata?.deletionTimestamp &&
      (pod.status?.conditions ?? []).some(c => c.type === "Ready" && c.status === "True"),
    nodeName: pod.spec?.nodeName,
    containerPorts: (pod.spec?.containers ?? []).flatMap(c =>
      (c.ports ?? []).map(p => ({
        name: p.name,
        containerPort: p.containerPort,
        protocol: p.protocol,
      })),
    ),
  };
}

/** Service created, changed or deleted: render (or remove) its macvlan twin. */
export async function reconcileService(svc: a.Service): Promise<void> {
  const ns = svc.metadata!.namespace!;
  const name = macvlanServiceName(svc.metadata!.name!);
  const current = await getIfExists(() =>
    K8s(a.Service, { namespace: ns }).Get(svc.metadata!.name!),
  );
  if (!current || current.metadata?.deletionTimestamp || !isExposed(current)) {
    // Owner references clean up after a deleted Service; an un-annotated one we clean ourselves.
    if (current) {
      for (const type of ADDRESS_TYPES)
        await K8s(a.EndpointSlice, { namespace: ns }).Delete(sliceName(svc.metadata!.name!, type));
      await K8s(a.Service, { namespace: ns }).Delete(name);
    }
    return;
  }
  const view = serviceView(current);
  const leases = watchCaches.leases.list().filter(l => l.spec?.podRef?.namespace === ns);
  const pods = (await K8s(a.Pod, { namespace: ns }).Get()).items.map(p => podView(p, leases));
  await K8s(a.Service).Apply(renderHeadlessService(view) as a.Service, { force: true });
  for (const type of ADDRESS_TYPES) {
    await K8s(a.EndpointSlice).Apply(
      renderEndpointSlice(view, pods, type) as unknown as a.EndpointSlice,
      { force: true },
    );
  }
  Log.debug(`service ${ns}/${name} rendered`);
}

/** A pod changed: refresh the exposed Services in its namespace that select it. */
export async function refreshServicesFor(pod: a.Pod): Promise<void> {
  if (!boundAddressesOf(pod, cachedLeasesFor(pod)).length && !pod.metadata?.annotations?.[ANN_IP])
    return;
  const ns = pod.metadata!.namespace!;
  for (const svc of watchCaches.services.list()) {
    if (svc.metadata?.namespace !== ns) continue;
    if (isExposed(svc) && selects(svc.spec?.selector ?? {}, pod.metadata?.labels ?? {})) {
      await reconcileService(svc);
    }
  }
}
