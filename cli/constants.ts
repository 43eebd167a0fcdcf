// Where the product runs (agent/deploy/agent.yaml, Pepr's generated module): names the plugin reads.
export const AGENT_NAMESPACE = "pepr-system";
export const AGENT_LABEL = "pepr-macvlan-agent";
export const MODULE_NAMESPACE = "pepr-system";
export const WEBHOOK_NAME = "pepr-pepr-macvlan";
export const NAD_CRD = "network-attachment-definitions.k8s.cni.cncf.io";
