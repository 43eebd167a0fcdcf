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
