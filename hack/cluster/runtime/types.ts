// The parts of the Pod API the node runtime reads (JSON as served by the apiserver).
import type { KubeObject } from "../kube";

export interface ExecAction {
  command?: string[];
}

export interface TCPSocketAction {
  port: number | string;
  host?: string;
}

export interface HTTPGetAction {
  path?: string;
  port: number | string;
  host?: string;
  scheme?: "HTTP" | "HTTPS";
  httpHeaders?: Array<{ name: string; value: string }>;
}

export interface Probe {
  exec?: ExecAction;
  tcpSocket?: TCPSocketAction;
  httpGet?: HTTPGetAction;
  grpc?: { port: number; service?: string };
  initialDelaySeconds?: number;
  periodSeconds?: number;
  timeoutSeconds?: number;
  successThreshold?: number;
  failureThreshold?: number;
}

export interface KeyRef {
  name: string;
  key: string;
  optional?: boolean;
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    fieldRef?: { fieldPath: string };
    configMapKeyRef?: KeyRef;
    secretKeyRef?: KeyRef;
    resourceFieldRef?: { resource: string; containerName?: string };
  };
}

export interface EnvFromSource {
  prefix?: string;
  configMapRef?: { name: string; optional?: boolean };
  secretRef?: { name: string; optional?: boolean };
}

export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol?: string;
}

export interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  envFrom?: EnvFromSource[];
  workingDir?: string;
  ports?: ContainerPort[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
}

export interface PodSpec {
  nodeName?: string;
  hostNetwork?: boolean;
  containers: Container[];
  initContainers?: Container[];
  restartPolicy?: "Always" | "OnFailure" | "Never";
  terminationGracePeriodSeconds?: number;
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
}

export interface Pod extends KubeObject {
  spec: PodSpec;
}

/** CNI result (spec 1.0.0), the parts we read. */
export interface CniResult {
  cniVersion?: string;
  interfaces?: Array<{ name: string; mac?: string; sandbox?: string }>;
  ips?: Array<{ address: string; gateway?: string; interface?: number }>;
  routes?: Array<{ dst: string; gw?: string }>;
  dns?: unknown;
}
