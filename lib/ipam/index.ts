// The pure IPAM engine: no Kubernetes client, no I/O, no clock of its own.
export * from "./address";
export * from "./allocator";
export * from "./errors";
export * from "./identity";
export * from "./intervals";
export * from "./mac";
export * from "./pool";
