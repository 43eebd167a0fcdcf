// Integration-test helpers for the local cluster; see cluster.ts for the API.
export * from "./cluster";
export * from "./host";
export * from "./objects";
