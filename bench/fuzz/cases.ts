// fast-check generators of hostile MacvlanSubnets and Pods for the fuzz run (bench/fuzz/run.ts).
// Valid-looking values use only 198.18.0.0/15 and 2001:db8::/32; hostile strings go anywhere a
// string fits (they are only ever sent as dry runs, see `safeForRealCreate`).
import fc from "fast-check";

/** The subnet every fuzzed pod may name; made by the runner before the cases. */
export const BASE_SUBNET = "fz-lan";
export const BASE_CIDR = "198.19.200.0/24";
export const NS_IN = "fz-in";
export const NS_OUT = "fz-out";

const octet = fc.integer({ min: 0, max: 255 });
const hex = fc.integer({ min: 0, max: 0xffff }).map(n => n.toString(16));

const ipv4 = fc
  .tuple(fc.constantFrom(18, 19), octet, octet)
  .map(([b, c, d]) => `198.${b}.${c}.${d}`);
const ipv6 = fc.tuple(hex, hex, hex).map(([a, b, c]) => `2001:db8:${a}::${b}:${c}`);
const baseIp = octet.map(d => `198.19.200.${d}`);

const hostileStrings = fc.constantFrom(
  "",
  " ",
  "0.0.0.0/0",
  "::/0",
  "198.18.0.0/33",
  "198.18.0.0/-1",
  "198.018.0.0/16",
  "198.18.0.0/016",
  "0x0a.0.0.0/8",
  "198.18.0.0/16\n",
  " 198.18.0.0/16",
  "198.18.0.0 /16",
  "198.18.0.0/16/16",
  "::ffff:198.18.0.0/112",
  "::ffff:198.18.0.1",
  "2001:db8:::/64",
  "2001:db8::/129",
  "fe80::1%eth0",
  "fe80::/10",
  "224.0.0.0/4",
  "255.255.255.255",
  "127.0.0.1/8",
  "1e2.0.0.0/8",
  "198.18.0.0/16,198.19.0.0/16",
  "198.18.1.1-198.18.1.9",
  "null",
  "undefined",
  "NaN",
  "-1",
  "99999999999999999999",
  "\u0000",
  "198.18.0.0\u0000/16",
  "１９８.１８.０.０/１６", // full-width digits
  "١٩٨.١٨.٠.٠/١٦", // Arabic-Indic digits
  "198.18.0.0/16\u202e",
  "'; DROP TABLE leases; --",
  '{"cidr":"198.18.0.0/16"}',
  "${jndi:ldap://x}",
  "../../etc/passwd",
);

/** Strings, often hostile: unicode, controls, long, numbers. */
const anyString = fc.oneof(
  hostileStrings,
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 20 }),
  fc.string({ minLength: 300, maxLength: 5000 }),
);

const prefix4 = fc.integer({ min: 8, max: 32 });
const prefix6 = fc.integer({ min: 32, max: 128 });
const cidr4 = fc.tuple(ipv4, prefix4).map(([ip, p]) => `${ip}/${p}`);
const cidr6 = fc.tuple(ipv6, prefix6).map(([ip, p]) => `${ip}/${p}`);
/** Network addresses of 198.18.0.0/15 (mostly valid, no host bits). */
const cleanCidr4 = fc
  .tuple(fc.constantFrom(18, 19), octet, fc.integer({ min: 16, max: 30 }))
  .map(([b, c, p]) => {
    const n = ((198 << 24) | (b << 16) | (c << 8)) >>> 0;
    const mask = p === 0 ? 0 : (0xffffffff << (32 - p)) >>> 0;
    const net = (n & mask) >>> 0;
    return `${[24, 16, 8, 0].map(s => (net >>> s) & 255).join(".")}/${p}`;
  });

const cidr = fc.oneof(
  { weight: 3, arbitrary: cleanCidr4 },
  { weight: 2, arbitrary: cidr4 },
  { weight: 2, arbitrary: cidr6 },
  { weight: 2, arbitrary: anyString },
);
const ip = fc.oneof(
  { weight: 3, arbitrary: ipv4 },
  { weight: 1, arbitrary: ipv6 },
  { weight: 1, arbitrary: anyString },
);
const ipOrCidr = fc.oneof(ip, cidr);

/** Usually short lists; sometimes huge (past the CRD's maxItems). */
const list = <T>(item: fc.Arbitrary<T>, huge = 300) =>
  fc.oneof(
    { weight: 8, arbitrary: fc.array(item, { maxLength: 4 }) },
    { weight: 1, arbitrary: fc.array(item, { minLength: 30, maxLength: huge }) },
  );

/** Nested JSON, up to ~60 levels: pruned by the structural schema, or refused. */
const deepJson = fc
  .tuple(fc.integer({ min: 1, max: 60 }), fc.jsonValue({ maxDepth: 2 }))
  .map(([depth, leaf]) => {
    let v: unknown = leaf;
    for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { [`k${i}`]: v };
    return v;
  });

const int = fc.oneof(
  fc.integer({ min: -10, max: 70000 }),
  fc.constantFrom(0, 1, 4094, 4095, 67, 68, 65535, 65536, -1, 2 ** 31, 2 ** 53),
  fc.double({ noNaN: true, min: -1e6, max: 1e6 }),
);
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined, freq: 2 });

const dnsName = fc.stringMatching(/^[a-z][a-z0-9-]{0,20}[a-z0-9]$/);
const labelKey = fc.oneof(
  fc.constantFrom("team", "macvlan.dev/subnet", "kubernetes.io/metadata.name"),
  anyString,
);

const selector = fc.record(
  {
    matchLabels: fc.dictionary(labelKey, fc.oneof(dnsName, anyString), { maxKeys: 3 }),
    matchExpressions: fc.array(
      fc.record(
        {
          key: labelKey,
          operator: fc.oneof(fc.constantFrom("In", "NotIn", "Exists", "DoesNotExist"), anyString),
          values: fc.array(fc.oneof(dnsName, anyString), { maxLength: 3 }),
        },
        { requiredKeys: ["key", "operator"] },
      ),
      { maxLength: 3 },
    ),
  },
  { requiredKeys: [] },
);

export interface SubnetCase {
  kind: "subnet";
  object: Record<string, unknown>;
}

export const subnetSpec = fc.record(
  {
    master: fc.oneof({ weight: 4, arbitrary: fc.constantFrom("eth0", "ens3", "bond0") }, anyString),
    vlan: int,
    mode: fc.oneof(fc.constantFrom("bridge", "private", "vepa", "passthru"), anyString),
    cidr,
    gateway: ip,
    ranges: list(fc.record({ start: ip, end: ip }, { requiredKeys: [] })),
    exclude: list(ipOrCidr, 400),
    routes: list(fc.record({ dst: cidr, gw: maybe(ip) }, { requiredKeys: ["dst"] })),
    podDefaultGateway: fc.oneof(fc.boolean(), fc.constant("yes" as unknown as boolean)),
    namespaces: list(fc.oneof(dnsName, anyString), 400),
    namespaceSelector: selector,
    reuseDelaySeconds: int,
    mtu: int,
    extra: deepJson,
  },
  { requiredKeys: [] },
);

export const subnetName = fc.oneof(
  { weight: 6, arbitrary: dnsName.map(n => `fz-${n}`.slice(0, 63).replace(/-$/, "x")) },
  { weight: 1, arbitrary: fc.string({ maxLength: 80 }) },
);

/** A /24 of 198.18.0.0/16 and addresses inside it: passes the CRD's CEL rules more often. */
const inside24 = fc.integer({ min: 0, max: 255 }).chain(c =>
  fc.record({
    cidr: fc.constantFrom(`198.18.${c}.0/24`, "198.19.200.0/24", "198.19.200.128/25"),
    ip: fc.integer({ min: 0, max: 255 }).map(d => `198.18.${c}.${d}`),
    ips: fc.array(
      fc.integer({ min: 0, max: 255 }).map(d => `198.18.${c}.${d}`),
      { maxLength: 6 },
    ),
  }),
);

/**
 * A plausible spec (addresses inside its /24) with one or two fields hostile or wrong in ways
 * only our validator sees: reversed or overlapping ranges, the base subnet's CIDR, reserved
 * addresses, odd selectors.
 */
const nearValidSpec = fc
  .tuple(
    inside24,
    subnetSpec,
    fc.subarray(
      [
        "gateway",
        "ranges",
        "exclude",
        "routes",
        "namespaces",
        "namespaceSelector",
        "podDefaultGateway",
        "reuseDelaySeconds",
      ],
      { minLength: 0, maxLength: 2 },
    ),
  )
  .map(([v, hostile, keys]) => {
    const [a = v.ip, b = v.ip, c = v.ip, d = v.ip] = v.ips;
    const spec: Record<string, unknown> = {
      master: "eth0",
      cidr: v.cidr,
      gateway: v.ip,
      ranges: [
        { start: a, end: b },
        { start: c, end: d },
      ],
      exclude: v.ips.slice(0, 2),
      routes: [{ dst: "198.19.0.0/24", gw: c }],
    };
    for (const k of keys) spec[k] = (hostile as Record<string, unknown>)[k];
    return spec;
  });

export const subnetCase: fc.Arbitrary<SubnetCase> = fc
  .tuple(
    subnetName,
    fc.oneof({ weight: 2, arbitrary: subnetSpec }, { weight: 3, arbitrary: nearValidSpec }),
    fc.option(deepJson, { nil: undefined }),
  )
  .map(([name, spec, junk]) => ({
    kind: "subnet",
    object: {
      apiVersion: "macvlan.dev/v1alpha1",
      kind: "MacvlanSubnet",
      metadata: { name: name || "fz-empty" },
      spec,
      ...(junk === undefined ? {} : { junk }),
    },
  }));

/** A valid-looking subnet with every address in 198.18.0.0/15: only these are created for real. */
export const safeSubnetCase: fc.Arbitrary<SubnetCase> = fc
  .tuple(
    dnsName,
    cleanCidr4,
    fc.array(fc.record({ start: ipv4, end: ipv4 }), { maxLength: 3 }),
    fc.array(ipv4, { maxLength: 3 }),
    fc.array(fc.record({ dst: cleanCidr4, gw: maybe(ipv4) }, { requiredKeys: ["dst"] }), {
      maxLength: 2,
    }),
    fc.integer({ min: 0, max: 4094 }),
  )
  .map(([name, c, ranges, exclude, routes, vlan]) => ({
    kind: "subnet",
    object: {
      apiVersion: "macvlan.dev/v1alpha1",
      kind: "MacvlanSubnet",
      metadata: { name: `fz-real-${name}`.slice(0, 63).replace(/-$/, "x") },
      spec: { master: "eth0", vlan, cidr: c, ranges, exclude, routes },
    },
  }));

const mac = fc.oneof(
  fc
    .array(fc.integer({ min: 0, max: 255 }), { minLength: 6, maxLength: 6 })
    .map(b => b.map(x => x.toString(16).padStart(2, "0")).join(":")),
  fc.constantFrom(
    "ff:ff:ff:ff:ff:ff",
    "01:00:5e:00:00:01",
    "00:00:00:00:00:00",
    "02:00:00:00:00:01",
  ),
  anyString,
);

const selection = fc.record(
  {
    name: fc.oneof(
      fc.constantFrom(`macvlan-${BASE_SUBNET}`, "macvlan-other", "default"),
      anyString,
    ),
    Name: fc.oneof(fc.constantFrom(`macvlan-${BASE_SUBNET}`), anyString),
    namespace: fc.oneof(fc.constantFrom(NS_IN, NS_OUT, "default"), anyString),
    interface: fc.oneof(fc.constantFrom("net1", "eth0", "net2"), anyString),
    ips: fc.array(
      fc.oneof(
        baseIp.map(i => `${i}/24`),
        ip,
      ),
      { maxLength: 3 },
    ),
    mac,
    "default-route": fc.array(ip, { maxLength: 2 }),
  },
  { requiredKeys: [] },
);

const networks = fc.oneof(
  fc.array(selection, { maxLength: 3 }).map(s => JSON.stringify(s)),
  fc.constantFrom(
    `${NS_IN}/macvlan-${BASE_SUBNET}@net1`,
    `macvlan-${BASE_SUBNET}`,
    `${NS_IN}/ macvlan-${BASE_SUBNET} @net1`,
    "default/other, other2",
    "[",
    "[]",
    "{}",
    '[{"name":"a"}]',
    '[{"name":"macvlan-fz-lan","na\\u006de":"x"}]',
  ),
  deepJson.map(v => JSON.stringify(v)),
  anyString,
);

const ipAnnotation = fc.oneof(
  { weight: 3, arbitrary: baseIp },
  { weight: 1, arbitrary: fc.array(baseIp, { minLength: 2, maxLength: 8 }).map(a => a.join(",")) },
  {
    weight: 1,
    arbitrary: fc.array(baseIp, { minLength: 50, maxLength: 300 }).map(a => a.join(",")),
  },
  { weight: 2, arbitrary: ip },
);

const annotations = fc.record(
  {
    "macvlan.dev/subnet": fc.oneof(fc.constantFrom(BASE_SUBNET, "nope", ""), anyString),
    "macvlan.dev/ip": ipAnnotation,
    "macvlan.dev/mac": mac,
    "macvlan.dev/single-nic": fc.oneof(fc.constantFrom("true", "false", "TRUE", "1"), anyString),
    "k8s.v1.cni.cncf.io/networks": networks,
    "v1.multus-cni.io/default-network": networks,
    "macvlan.dev/reservation": anyString,
    "macvlan.dev/admission-error": anyString,
    "macvlan.dev/pool-owner": anyString,
  },
  { requiredKeys: [] },
);

export interface PodCase {
  kind: "pod";
  namespace: string;
  object: Record<string, unknown>;
}

const podName = fc.oneof(
  { weight: 8, arbitrary: dnsName.map(n => `fz-${n}`) },
  { weight: 1, arbitrary: fc.string({ maxLength: 80 }) },
);

export const podCase: fc.Arbitrary<PodCase> = fc
  .tuple(
    podName,
    fc.constantFrom(NS_IN, NS_IN, NS_OUT),
    annotations,
    fc.option(deepJson, { nil: undefined }),
  )
  .map(([name, namespace, ann, junk]) => ({
    kind: "pod",
    namespace,
    object: {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: name || "fz-empty",
        namespace,
        annotations: ann,
        ...(junk ? { labels: { junk: "x" } } : {}),
      },
      spec: {
        // Never scheduled on a real node: the real creates make leases, not containers.
        nodeName: "fz-nowhere",
        containers: [{ name: "c", image: "busybox:1.36", imagePullPolicy: "IfNotPresent" }],
      },
      ...(junk === undefined ? {} : { junk }),
    },
  }));

export type FuzzCase = SubnetCase | PodCase;

/** `n` cases, half subnets and half pods, from one seed (printed, so a run can be repeated). */
export function generate(n: number, seed: number): FuzzCase[] {
  const subnets = fc.sample(subnetCase, { numRuns: Math.ceil(n / 2), seed });
  const pods = fc.sample(podCase, { numRuns: Math.floor(n / 2), seed: seed + 1 });
  return [...subnets, ...pods];
}

export function generateSafeSubnets(n: number, seed: number): SubnetCase[] {
  return fc.sample(safeSubnetCase, { numRuns: n, seed: seed + 2 });
}
