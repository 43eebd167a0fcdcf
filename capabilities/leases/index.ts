import { Capability } from "pepr";
import { startResyncLoop } from "./resync";
import { startWatchCaches } from "../watch-caches";
import { processRole } from "../../lib/mode";

export const Leases = new Capability({
  name: "macvlan-leases",
  description:
    "Repairs drift between leases, pods, NADs and subnet status, at start and every minute",
});

if (processRole() === "watcher") {
  void startWatchCaches();
  startResyncLoop();
}
