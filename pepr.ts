import { PeprModule } from "pepr";
import cfg from "./package.json";
import { Subnets } from "./capabilities/subnets";
import { Pods } from "./capabilities/pods";
import { Leases } from "./capabilities/leases";
import { Services } from "./capabilities/services";

new PeprModule(cfg, [Subnets, Pods, Leases, Services]);
