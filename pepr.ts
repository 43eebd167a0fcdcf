import { PeprModule } from "pepr";
import { installServerTuning } from "./capabilities/server-tuning";
import cfg from "./package.json";
import { Subnets } from "./capabilities/subnets";
import { Pods } from "./capabilities/pods";
import { Leases } from "./capabilities/leases";
import { Services } from "./capabilities/services";
import { Webhooks } from "./capabilities/webhooks";

// Before Pepr creates its HTTPS server: keep-alive longer than the API server's idle timeout.
installServerTuning();
new PeprModule(cfg, [Subnets, Pods, Leases, Services, Webhooks]);
