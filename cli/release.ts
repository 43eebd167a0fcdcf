// `kubectl macvlan release <ip> --force`: an operator's manual repair. The lease goes to Released
// through the product's own release decision (lib/decide/release.ts: the address then waits the
// subnet's reuse delay, and the watcher deletes the lease after it) with a precondition on what
// was read, and an Event on the lease says who did it.
import { DEFAULT_REUSE_DELAY_SECONDS } from "../crds/types";
import { releaseWrites } from "../lib/decide/release";
import { Write } from "../lib/decide/writes";
import { tryParseIp } from "../lib/ipam";
import { MacvlanLease, MacvlanSubnet, Pod, nameOf } from "./snapshot";

export type ReleasePlan =
  | { ok: false; message: string }
  | { ok: true; lease: MacvlanLease; writes: Write[]; warning?: string; summary: string };

export function planRelease(
  s: { leases: MacvlanLease[]; subnets: MacvlanSubnet[]; pods: Pod[]; now: Date },
  ip: string,
  subnet?: string,
): ReleasePlan {
  const want = tryParseIp(ip);
  if (!want) return { ok: false, message: `"${ip}" is not an IP address` };
  const matches = s.leases.filter(l => {
    const p = tryParseIp(l.spec?.ip ?? "");
    return (
      p?.value === want.value && p.family === want.family && (!subnet || l.spec?.subnet === subnet)
    );
  });
  if (!matches.length) return { ok: false, message: `no MacvlanLease holds ${ip}` };
  if (matches.length > 1)
    return {
      ok: false,
      message: `${ip} is leased on several subnets (${matches.map(l => l.spec?.subnet).join(", ")}): add --subnet`,
    };
  const lease = matches[0];
  const sub = s.subnets.find(x => nameOf(x) === lease.spec?.subnet);
  const delay = sub?.spec?.reuseDelaySeconds ?? DEFAULT_REUSE_DELAY_SECONDS;
  const target = {
    apiVersion: "macvlan.dev/v1alpha1",
    kind: "MacvlanLease",
    name: nameOf(lease),
    uid: lease.metadata?.uid,
  };
  const { outcome, writes } = releaseWrites(
    lease,
    "released by hand with kubectl macvlan release --force",
    target,
    // superseded: a sticky ordinal's lease is released too, not held: the operator asked for it.
    { superseded: true, reuseDelaySeconds: delay, now: s.now },
  );
  if (outcome === "unchanged")
    return { ok: false, message: `lease ${nameOf(lease)} is already Released` };
  const ref = lease.spec?.podRef;
  const pod = ref?.uid ? s.pods.find(p => p.metadata?.uid === ref.uid) : undefined;
  const warning =
    pod && !pod.metadata?.deletionTimestamp
      ? `pod ${ref!.namespace}/${ref!.name} still runs with ${ip}: after ${delay}s another pod may get the same address; delete that pod too`
      : undefined;
  return {
    ok: true,
    lease,
    writes: writes.map(w =>
      w.op === "event" ? { ...w, type: "Warning", reason: "ManualRelease" } : w,
    ),
    warning,
    summary: `lease ${nameOf(lease)} (${lease.spec?.ip} on ${lease.spec?.subnet}, ${lease.status?.phase ?? "Reserved"}${ref ? `, pod ${ref.namespace}/${ref.name ?? ""}` : ""}) -> Released; reusable after ${delay}s`,
  };
}
