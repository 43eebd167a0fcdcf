import test from "ava";
import {
  CpuProfile,
  HeapProfile,
  cpuSelfTime,
  heapAllocations,
  packageOf,
} from "../../bench/profile/summary";

const frame = (functionName: string, url: string, lineNumber = 0) => ({
  functionName,
  url,
  lineNumber,
});

test("a script's package: node_modules (scoped too), Node's internals, V8's buckets, the bundle", t => {
  t.is(
    packageOf("file:///app/node_modules/kubernetes-fluent-client/dist/fetch.js"),
    "kubernetes-fluent-client",
  );
  t.is(packageOf("/app/node_modules/@kubernetes/client-node/dist/x.js"), "@kubernetes/client-node");
  t.is(packageOf("node:internal/streams/readable"), "node (internals)");
  t.is(packageOf("", "(garbage collector)"), "(garbage collector)");
  t.is(packageOf("", "JSONParse"), "(native)");
  t.regex(packageOf("file:///app/load/module-abc.js"), /module bundle/);
});

test("CPU self time is the sum of the time deltas of the samples that landed in each function", t => {
  const p: CpuProfile = {
    nodes: [
      { id: 1, callFrame: frame("(root)", "") },
      { id: 2, callFrame: frame("parse", "file:///app/node_modules/yaml/dist/p.js", 9) },
      { id: 3, callFrame: frame("(garbage collector)", "") },
    ],
    samples: [2, 2, 3, 2],
    timeDeltas: [100, 300, 600, 1000],
  };
  const r = cpuSelfTime(p);
  t.deepEqual(
    r.byFunction.map(s => [s.key, s.value]),
    [
      ["parse dist/p.js:10", 1400],
      ["(garbage collector)", 600],
    ],
  );
  t.is(r.byPackage[0].key, "yaml");
  t.is(Math.round(r.byPackage[0].percent), 70);
});

test("allocations add up each node's self size over the whole tree, by function and package", t => {
  const leaf = (name: string, url: string, selfSize: number) => ({
    callFrame: frame(name, url),
    selfSize,
    children: [],
  });
  const p: HeapProfile = {
    head: {
      callFrame: frame("(root)", ""),
      selfSize: 0,
      children: [
        {
          callFrame: frame("watch", "/app/node_modules/kubernetes-fluent-client/w.js"),
          selfSize: 10,
          children: [leaf("JSONParse", "", 90)],
        },
        leaf("watch", "/app/node_modules/kubernetes-fluent-client/w.js", 30),
      ],
    },
  };
  const r = heapAllocations(p);
  t.deepEqual(
    r.byFunction.map(s => [s.key, s.value]),
    [
      ["JSONParse", 90],
      ["watch kubernetes-fluent-client/w.js:1", 40],
    ],
  );
  t.deepEqual(
    r.byPackage.map(s => s.key),
    ["(native)", "kubernetes-fluent-client"],
  );
});
