// Name rules shared by the validators (and mirrored by CEL rules in crds/*.yaml).
import { IFNAME_MAX } from "../../crds/types";

/**
 * A Linux interface name as the kernel accepts it (dev_valid_name): 1 to 15 bytes, not "." or
 * "..", and no '/', ':' or whitespace.
 */
export function isValidInterfaceName(name: unknown): name is string {
  return (
    typeof name === "string" &&
    name.length >= 1 &&
    Buffer.byteLength(name, "utf8") <= IFNAME_MAX &&
    name !== "." &&
    name !== ".." &&
    !/[/:\s]/.test(name)
  );
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** An RFC 1123 DNS label, the form of a namespace name. */
export const isDnsLabel = (s: unknown): s is string =>
  typeof s === "string" && s.length <= 63 && DNS_LABEL.test(s);

/**
 * A name an object can have (DNS-1123 subdomain: what the API server allows for pods, namespaces
 * and custom resources). Anything else is never sent in a URL: a '/' in it would name a
 * subresource, '%' and '..' would change the path.
 */
export const isObjectName = (s: unknown): s is string =>
  typeof s === "string" &&
  s.length > 0 &&
  s.length <= 253 &&
  /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(s);
