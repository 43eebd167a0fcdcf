// Multus network selections read exactly as Multus reads them, so that no spelling Multus accepts
// can name a network behind our back. Mirrors multus-cni pkg/k8sclient/k8sclient.go (identical in
// v4.2.3 and v4.3.0): parsePodNetworkAnnotation, parsePodNetworkObjectName, GetPodNetwork and
// tryLoadK8sPodDefaultNetwork. Pure: no Kubernetes client.
import { ANN_MULTUS_DEFAULT, ANN_MULTUS_NETWORKS } from "../names";
import { checkSelections, networkOf, readSelections, type ReadResult } from "./annotation";
import type {
  ManagedReference,
  ManagedReferences,
  ParseResult,
  UnparseableAnnotation,
} from "./types";

export type * from "./types";

/** Multus' default `multusNamespace` (pkg/types/conf.go defaultMultusNamespace). */
export const MULTUS_DEFAULT_NAMESPACE = "kube-system";

export interface DefaultNetworkOptions {
  /** Multus' configured `multusNamespace`; default kube-system. */
  multusNamespace?: string;
}

const NO_SELECTIONS: ParseResult = { ok: true, selections: [] };

/** An annotation read (not yet checked), with how Multus goes on with it. */
interface AnnotationReading {
  read: ReadResult;
  /** Where a selection without a namespace is looked up. */
  defaultNamespace: string;
  /** The default network must name exactly one network. */
  exactlyOne: boolean;
}

/**
 * The `k8s.v1.cni.cncf.io/networks` annotation. Absent or "" means no extra networks
 * (GetPodNetwork); anything else goes through parsePodNetworkAnnotation, where a selection
 * without a namespace is in the pod's namespace.
 */
export function parseNetworks(annotation: string | undefined, podNamespace: string): ParseResult {
  return checkReading(readNetworks(annotation, podNamespace));
}

/**
 * The `v1.multus-cni.io/default-network` annotation (tryLoadK8sPodDefaultNetwork). Absent: no
 * override. Present, it is parsed like the networks annotation (name, ns/name, JSON list; a
 * single JSON object is refused) except that a selection without a namespace is in Multus' own
 * namespace, NOT the pod's. It must name exactly one network: "" is an error (parsePodNetwork-
 * Annotation refuses it), more than one is an error, and so is an empty JSON list (Multus indexes
 * its first element).
 */
export function parseDefaultNetwork(
  annotation: string | undefined,
  options: DefaultNetworkOptions = {},
): ParseResult {
  return checkReading(readDefaultNetwork(annotation, options));
}

/**
 * Every reference, in both Multus annotations, to a network `isManaged` says is ours, resolved
 * to the namespace Multus would look it up in. References are taken as soon as the annotation can
 * be read, even when a later check (a MAC, an IP, the number of default networks) fails, so that a
 * check stricter than Multus' cannot hide a reference. An annotation Multus would refuse is
 * listed in `unparseable`; callers should refuse the pod (fail closed).
 */
export function managedReferences(
  annotations: Record<string, string> | undefined,
  podNamespace: string,
  isManaged: (namespace: string, name: string) => boolean,
  options: DefaultNetworkOptions = {},
): ManagedReferences {
  const refs: ManagedReference[] = [];
  const unparseable: UnparseableAnnotation[] = [];
  const readings: [string, AnnotationReading | undefined][] = [
    [ANN_MULTUS_NETWORKS, readNetworks(annotations?.[ANN_MULTUS_NETWORKS], podNamespace)],
    [ANN_MULTUS_DEFAULT, readDefaultNetwork(annotations?.[ANN_MULTUS_DEFAULT], options)],
  ];
  for (const [annotation, reading] of readings) {
    if (!reading) continue;
    const parsed = checkReading(reading);
    if (!parsed.ok) unparseable.push({ annotation, error: parsed.error });
    if (!reading.read.ok) continue;
    for (const raw of reading.read.raw) {
      const { namespace, name } = networkOf(raw, reading.defaultNamespace);
      if (isManaged(namespace, name)) refs.push({ annotation, namespace, name });
    }
  }
  return { refs, unparseable };
}

function readNetworks(annotation: string | undefined, podNamespace: string) {
  if (annotation === undefined || annotation === "") return undefined;
  const reading: AnnotationReading = {
    read: readSelections(annotation),
    defaultNamespace: podNamespace,
    exactlyOne: false,
  };
  return reading;
}

function readDefaultNetwork(annotation: string | undefined, options: DefaultNetworkOptions) {
  if (annotation === undefined) return undefined;
  const reading: AnnotationReading = {
    read:
      annotation === ""
        ? { ok: false, error: "it is empty; it must name one network" }
        : readSelections(annotation),
    defaultNamespace: options.multusNamespace ?? MULTUS_DEFAULT_NAMESPACE,
    exactlyOne: true,
  };
  return reading;
}

function checkReading(reading: AnnotationReading | undefined): ParseResult {
  if (!reading) return NO_SELECTIONS;
  if (!reading.read.ok) return reading.read;
  const parsed = checkSelections(reading.read.raw, reading.defaultNamespace);
  if (parsed.ok && reading.exactlyOne && parsed.selections.length !== 1) {
    return {
      ok: false,
      error: `it must name exactly one network, not ${parsed.selections.length}`,
    };
  }
  return parsed;
}
