// Where a process's time and memory went, from a V8 CPU profile (.cpuprofile) and a sampling heap
// profile (.heapprofile) as the inspector returns them: self time and allocated bytes per function
// and per package (node_modules/<package>, the module's own code, Node's internals, V8's own
// buckets such as (garbage collector) and (idle)). Pure: bench/watcher-profile.bench.ts reads the
// files and prints these tables.

export interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
export interface CpuProfile {
  nodes: { id: number; callFrame: CallFrame }[];
  samples: number[];
  timeDeltas: number[];
}
export interface HeapNode {
  callFrame: CallFrame;
  selfSize: number;
  children: HeapNode[];
}
export interface HeapProfile {
  head: HeapNode;
}

export interface Share {
  key: string;
  value: number;
  percent: number;
}

/** The package a script belongs to: node_modules/<pkg> (scoped too), node:internal, or ours. */
export function packageOf(url: string, functionName = ""): string {
  if (!url) return functionName.startsWith("(") ? functionName : "(native)";
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const rest = url.slice(nm + "node_modules/".length).split("/");
    return rest[0].startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  if (url.startsWith("node:")) return "node (internals)";
  return "the module bundle (our code, ipaddr.js, yaml, prom-client)";
}

const frameKey = (f: CallFrame) => {
  const file = f.url ? f.url.split("/").slice(-2).join("/") : "";
  const name = f.functionName || "(anonymous)";
  return file ? `${name} ${file}:${f.lineNumber + 1}` : name;
};

function shares(totals: Map<string, number>, top: number): Share[] {
  const sum = [...totals.values()].reduce((a, b) => a + b, 0) || 1;
  return [...totals.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([key, value]) => ({ key, value, percent: (100 * value) / sum }));
}

const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);

/** Self time (µs) by function and by package. */
export function cpuSelfTime(p: CpuProfile, top = 15): { byFunction: Share[]; byPackage: Share[] } {
  const frames = new Map(p.nodes.map(n => [n.id, n.callFrame]));
  const byFunction = new Map<string, number>();
  const byPackage = new Map<string, number>();
  p.samples.forEach((id, i) => {
    const f = frames.get(id);
    const dt = p.timeDeltas[i] ?? 0;
    if (!f) return;
    add(byFunction, frameKey(f), dt);
    add(byPackage, packageOf(f.url, f.functionName), dt);
  });
  return { byFunction: shares(byFunction, top), byPackage: shares(byPackage, top) };
}

/** Sampled allocation bytes by allocating function and by package. */
export function heapAllocations(
  p: HeapProfile,
  top = 15,
): { byFunction: Share[]; byPackage: Share[] } {
  const byFunction = new Map<string, number>();
  const byPackage = new Map<string, number>();
  const stack: HeapNode[] = [p.head];
  while (stack.length) {
    const n = stack.pop()!;
    if (n.selfSize) {
      add(byFunction, frameKey(n.callFrame), n.selfSize);
      add(byPackage, packageOf(n.callFrame.url, n.callFrame.functionName), n.selfSize);
    }
    stack.push(...n.children);
  }
  return { byFunction: shares(byFunction, top), byPackage: shares(byPackage, top) };
}

/** A markdown table of shares; `unit` formats a value. */
export function shareTable(title: string, rows: Share[], unit: (v: number) => string): string {
  return [
    `| ${title} | amount | share |`,
    "| --- | --- | --- |",
    ...rows.map(r => `| \`${r.key}\` | ${unit(r.value)} | ${r.percent.toFixed(1)} % |`),
  ].join("\n");
}
