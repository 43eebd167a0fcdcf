// The comma-separated form of the selection annotation: `[namespace/]name[@interface], ...`.
import { goTrimSpace, isEmptyOrDns1123Label, isValidShorthandInterface } from "./go-text";

export class SelectionError extends Error {}

export interface ShorthandReference {
  /** "" when the item names none: the caller applies Multus' default namespace. */
  namespace: string;
  name: string;
  /** "" when the item names none. */
  interface: string;
}

/**
 * Mirrors parsePodNetworkAnnotation's comma branch (multus-cni pkg/k8sclient/k8sclient.go,
 * v4.2.3 and v4.3.0 alike): strings.Split on "," with no special case for empty items, each item
 * strings.TrimSpace'd and parsed by parseShorthandReference.
 */
export function parseShorthandList(text: string): ShorthandReference[] {
  return text.split(",").map((item, index) => {
    try {
      return parseShorthandReference(goTrimSpace(item));
    } catch (e) {
      if (!(e instanceof SelectionError)) throw e;
      throw new SelectionError(`selection ${index + 1} (${JSON.stringify(item)}): ${e.message}`);
    }
  });
}

/**
 * Mirrors parsePodNetworkObjectName: exactly zero or one "/" (namespace TrimSpace'd), then
 * zero or one "@" (name and interface TrimSpace'd); namespace and name, when not empty, must be
 * DNS-1123 labels (no length limit is checked); a non-empty interface must fit 15 bytes and hold
 * no ASCII whitespace or "/".
 */
export function parseShorthandReference(item: string): ShorthandReference {
  const slashParts = item.split("/");
  if (slashParts.length > 2) throw new SelectionError('more than one "/"');
  const namespace = slashParts.length === 2 ? goTrimSpace(slashParts[0]) : "";
  const atParts = slashParts[slashParts.length - 1].split("@");
  if (atParts.length > 2) throw new SelectionError('more than one "@"');
  const name = goTrimSpace(atParts[0]);
  const iface = atParts.length === 2 ? goTrimSpace(atParts[1]) : "";
  for (const part of [namespace, name]) {
    if (!isEmptyOrDns1123Label(part)) {
      throw new SelectionError(
        `${JSON.stringify(part)} is not a DNS-1123 label (lower-case letters, digits and "-", ` +
          `starting and ending with a letter or digit)`,
      );
    }
  }
  if (iface !== "" && !isValidShorthandInterface(iface)) {
    throw new SelectionError(
      `interface name ${JSON.stringify(iface)} must be at most 15 bytes without spaces or "/"`,
    );
  }
  return { namespace, name, interface: iface };
}
