// One element of a Multus network selection, as Multus reads it (multus-cni pkg/types
// NetworkSelectionElement). Keys carry the JSON names Multus writes and reads.

export interface PortMapping {
  hostPort?: number;
  containerPort?: number;
  protocol?: string;
  hostIP?: string;
}

export interface Bandwidth {
  ingressRate?: number;
  ingressBurst?: number;
  egressRate?: number;
  egressBurst?: number;
}

export interface NetworkSelection {
  /** The NetworkAttachmentDefinition's name. */
  name: string;
  /** Its namespace, after Multus' defaulting (see parseNetworks / parseDefaultNetwork). */
  namespace: string;
  /** The interface in the pod (`interfaceRequest`, the pre-3.2 spelling, folded in). */
  interface?: string;
  ips?: string[];
  mac?: string;
  /** Gateways for the pod's default route; "" stands for an empty (nil) address. */
  "default-route"?: string[];
  "infiniband-guid"?: string;
  deviceID?: string;
  /** null entries are kept: Multus decodes them to nil pointers. */
  portMappings?: (PortMapping | null)[];
  bandwidth?: Bandwidth;
  "cni-args"?: Record<string, unknown>;
}

export type ParseResult =
  | { ok: true; selections: NetworkSelection[] }
  | { ok: false; error: string };

/** A reference to a managed NetworkAttachmentDefinition, as Multus resolves it. */
export interface ManagedReference {
  /** The pod annotation the reference is in. */
  annotation: string;
  namespace: string;
  name: string;
}

export interface UnparseableAnnotation {
  annotation: string;
  error: string;
}

export interface ManagedReferences {
  refs: ManagedReference[];
  /** Annotations Multus would refuse (so could hide anything): callers should fail closed. */
  unparseable: UnparseableAnnotation[];
}
