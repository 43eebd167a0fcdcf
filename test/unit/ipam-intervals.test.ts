import test from "ava";
import fc from "fast-check";
import {
  IntervalSet,
  contains,
  indexOf,
  intersect,
  normalize,
  subtract,
  totalSize,
  type Interval,
} from "../../lib/ipam";

const iv = (start: number, end: number): Interval => ({ start: BigInt(start), end: BigInt(end) });
const points = (list: readonly Interval[]) => {
  const out: number[] = [];
  for (const { start, end } of list) for (let x = start; x <= end; x++) out.push(Number(x));
  return out;
};

test("normalize sorts, merges overlapping and adjacent, drops empty", t => {
  t.deepEqual(normalize([iv(10, 12), iv(0, 3), iv(4, 5), iv(11, 20), iv(30, 29), iv(40, 40)]), [
    iv(0, 5),
    iv(10, 20),
    iv(40, 40),
  ]);
});

test("intersect and subtract", t => {
  const a = [iv(0, 10), iv(20, 30)];
  const b = [iv(5, 22), iv(25, 25), iv(28, 40)];
  t.deepEqual(intersect(a, b), [iv(5, 10), iv(20, 22), iv(25, 25), iv(28, 30)]);
  t.deepEqual(subtract(a, b), [iv(0, 4), iv(23, 24), iv(26, 27)]);
  t.deepEqual(subtract(a, []), a);
  t.deepEqual(subtract(a, [iv(-5, 50)]), []);
  t.is(totalSize(a), 22n);
  t.is(indexOf(a, 25n), 1);
  t.false(contains(a, 15n));
});

/** Sorted, non-empty, disjoint and non-adjacent. */
const normalized = (list: readonly Interval[]) =>
  list.every((v, i) => v.start <= v.end && (i === 0 || list[i - 1].end + 1n < v.start));

const intervalList = fc
  .array(fc.tuple(fc.integer({ min: 0, max: 60 }), fc.integer({ min: 0, max: 8 })), {
    maxLength: 8,
  })
  .map(xs => normalize(xs.map(([s, len]) => iv(s, s + len))));

test("set operations match a point model", t => {
  fc.assert(
    fc.property(intervalList, intervalList, (a, b) => {
      const sa = new Set(points(a));
      const sb = new Set(points(b));
      const inter = points(intersect(a, b));
      const diff = points(subtract(a, b));
      return (
        normalized(intersect(a, b)) &&
        normalized(subtract(a, b)) &&
        JSON.stringify(inter) ===
          JSON.stringify([...sa].filter(x => sb.has(x)).sort((x, y) => x - y)) &&
        JSON.stringify(diff) ===
          JSON.stringify([...sa].filter(x => !sb.has(x)).sort((x, y) => x - y))
      );
    }),
    { numRuns: 500 },
  );
  t.pass();
});

test("IntervalSet pops the lowest, merges on add and splits on delete", t => {
  const s = new IntervalSet([iv(10, 12), iv(20, 20)]);
  t.is(s.size, 4n);
  t.is(s.popMin(), 10n);
  t.true(s.add(13n));
  t.false(s.add(12n), "already present");
  t.deepEqual(s.toArray(), [iv(11, 13), iv(20, 20)]);
  t.true(s.delete(12n));
  t.deepEqual(s.toArray(), [iv(11, 11), iv(13, 13), iv(20, 20)]);
  t.false(s.delete(12n));
  for (let x = 14n; x < 20n; x++) s.add(x);
  t.deepEqual(s.toArray(), [iv(11, 11), iv(13, 20)], "bridging add merges both neighbours");
  t.true(s.add(12n));
  t.deepEqual(s.toArray(), [iv(11, 20)]);
  t.is(s.intervalCount, 1);
  const empty = new IntervalSet();
  t.is(empty.popMin(), undefined);
  t.true(empty.add(5n));
  t.is(empty.min(), 5n);
});

test("IntervalSet stays correct across chunk boundaries", t => {
  // Every other address: 3000 single-address intervals, several chunks.
  const s = new IntervalSet(Array.from({ length: 3000 }, (_, i) => iv(2 * i, 2 * i)));
  for (let i = 0; i < 3000; i++) t.true(s.has(BigInt(2 * i)) && !s.has(BigInt(2 * i + 1)));
  // Filling the gaps merges across chunks down to one interval.
  for (let i = 2998; i >= 0; i -= 3) s.add(BigInt(2 * i + 1));
  for (let i = 0; i < 2999; i++) s.add(BigInt(2 * i + 1));
  t.deepEqual(s.toArray(), [iv(0, 5998)]);
  t.is(s.size, 5999n);
  // Punching holes splits it again, in order.
  for (let x = 1; x < 5998; x += 2) s.delete(BigInt(x));
  t.is(s.intervalCount, 3000);
  const popped: bigint[] = [];
  for (let x = s.popMin(); x !== undefined; x = s.popMin()) popped.push(x);
  t.deepEqual(
    popped,
    Array.from({ length: 3000 }, (_, i) => BigInt(2 * i)),
  );
  t.is(s.size, 0n);
});

test("IntervalSet matches a Set model under random operations", t => {
  const op = fc.oneof(
    fc.record({ k: fc.constant("add" as const), x: fc.integer({ min: 0, max: 3000 }) }),
    fc.record({ k: fc.constant("del" as const), x: fc.integer({ min: 0, max: 3000 }) }),
    fc.record({ k: fc.constant("pop" as const), x: fc.constant(0) }),
    fc.record({ k: fc.constant("ceil" as const), x: fc.integer({ min: -5, max: 3005 }) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 3000 }), ops => {
      const s = new IntervalSet([iv(0, 999), iv(2000, 2999)]);
      const model = new Set([
        ...Array(1000).keys(),
        ...Array.from({ length: 1000 }, (_, i) => 2000 + i),
      ]);
      for (const { k, x } of ops) {
        if (k === "add") {
          if (s.add(BigInt(x)) !== !model.has(x)) return false;
          model.add(x);
        } else if (k === "del") {
          if (s.delete(BigInt(x)) !== model.has(x)) return false;
          model.delete(x);
        } else if (k === "ceil") {
          const above = [...model].filter(m => m >= x);
          const want = above.length ? Math.min(...above) : undefined;
          const got = s.ceiling(BigInt(x));
          if ((got === undefined ? undefined : Number(got)) !== want) return false;
        } else {
          const min = model.size ? Math.min(...model) : undefined;
          const got = s.popMin();
          if ((got === undefined ? undefined : Number(got)) !== min) return false;
          if (min !== undefined) model.delete(min);
        }
      }
      const arr = s.toArray();
      return (
        s.size === BigInt(model.size) &&
        JSON.stringify(points(arr)) === JSON.stringify([...model].sort((a, b) => a - b)) &&
        normalized(arr)
      );
    }),
    { numRuns: 60 },
  );
  t.pass();
});

test("subtract, totalSize and contains agree with a brute-force model", t => {
  const range = fc
    .tuple(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 40 }))
    .map(([a, b]) => iv(Math.min(a, b), Math.max(a, b)));
  fc.assert(
    fc.property(
      fc.array(range, { maxLength: 5 }),
      fc.array(range, { maxLength: 5 }),
      (keep, drop) => {
        const model = new Set<number>();
        for (const i of keep) for (let v = Number(i.start); v <= Number(i.end); v++) model.add(v);
        for (const i of drop)
          for (let v = Number(i.start); v <= Number(i.end); v++) model.delete(v);
        const got = subtract(normalize(keep), normalize(drop));
        if (totalSize(got) !== BigInt(model.size)) return false;
        for (let v = 0; v <= 41; v++) if (contains(got, BigInt(v)) !== model.has(v)) return false;
        return normalized(got);
      },
    ),
    { numRuns: 300 },
  );
  t.pass();
});
