// Sets of addresses as sorted, disjoint, non-adjacent inclusive BigInt intervals: memory
// follows the number of holes, never the number of addresses, so a /8 or a /64 costs what
// a /24 costs.

export interface Interval {
  readonly start: bigint;
  readonly end: bigint;
}

const byStart = (a: Interval, b: Interval) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0);

/** Sorts and merges overlapping or adjacent intervals; empty ones (start > end) are dropped. */
export function normalize(list: Iterable<Interval>): Interval[] {
  const sorted = [...list].filter(i => i.start <= i.end).sort(byStart);
  const out: { start: bigint; end: bigint }[] = [];
  for (const { start, end } of sorted) {
    const last = out[out.length - 1];
    if (last && start <= last.end + 1n) {
      if (end > last.end) last.end = end;
    } else {
      out.push({ start, end });
    }
  }
  return out;
}

/** a ∩ b, both normalized. */
export function intersect(a: readonly Interval[], b: readonly Interval[]): Interval[] {
  const out: Interval[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const start = a[i].start > b[j].start ? a[i].start : b[j].start;
    const end = a[i].end < b[j].end ? a[i].end : b[j].end;
    if (start <= end) out.push({ start, end });
    if (a[i].end < b[j].end) i++;
    else j++;
  }
  return out;
}

/** a − b, both normalized; one linear sweep. */
export function subtract(a: readonly Interval[], b: readonly Interval[]): Interval[] {
  const out: Interval[] = [];
  let j = 0;
  for (const { start, end } of a) {
    let cur = start;
    while (j < b.length && b[j].end < cur) j++;
    let k = j;
    while (k < b.length && b[k].start <= end && cur <= end) {
      if (b[k].start > cur) out.push({ start: cur, end: b[k].start - 1n });
      cur = b[k].end + 1n;
      k++;
    }
    if (cur <= end) out.push({ start: cur, end });
  }
  return out;
}

/** Points (any order, duplicates allowed) as a normalized interval list. */
export function pointsToIntervals(points: readonly bigint[]): Interval[] {
  const out: { start: bigint; end: bigint }[] = [];
  for (const p of points) {
    const last = out[out.length - 1];
    if (!last) out.push({ start: p, end: p });
    else if (p < last.start)
      return normalize(points.map(x => ({ start: x, end: x }))); // unsorted
    else if (p > last.end + 1n) out.push({ start: p, end: p });
    else if (p > last.end) last.end = p;
  }
  return out;
}

export function totalSize(list: readonly Interval[]): bigint {
  let n = 0n;
  for (const i of list) n += i.end - i.start + 1n;
  return n;
}

/** Index of the interval holding x in a normalized list, or -1 (binary search). */
export function indexOf(list: readonly Interval[], x: bigint): number {
  let lo = 0;
  let hi = list.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid].end < x) lo = mid + 1;
    else if (list[mid].start > x) hi = mid - 1;
    else return mid;
  }
  return -1;
}

export const contains = (list: readonly Interval[], x: bigint): boolean => indexOf(list, x) >= 0;

/** Index of the last element <= x in an ascending array, or -1. */
function lastAtMost(xs: readonly bigint[], x: bigint): number {
  let lo = 0;
  let hi = xs.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (xs[mid] <= x) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}

/** Intervals of one chunk, as parallel arrays of starts and ends. */
interface Chunk {
  s: bigint[];
  e: bigint[];
}

const MAX_CHUNK = 512;

/**
 * A mutable interval set for the free pool. Intervals live in chunks of at most 512, so
 * taking the lowest address, adding one or removing one costs a binary search and a small
 * splice, never a pass over the whole pool, however fragmented it is.
 */
export class IntervalSet {
  private chunks: Chunk[] = [];
  private count = 0;
  private addresses = 0n;

  /** `sorted` must be normalized (see normalize). */
  constructor(sorted: readonly Interval[] = []) {
    for (let i = 0; i < sorted.length; i += MAX_CHUNK / 2) {
      const part = sorted.slice(i, i + MAX_CHUNK / 2);
      this.chunks.push({ s: part.map(p => p.start), e: part.map(p => p.end) });
    }
    this.count = sorted.length;
    this.addresses = totalSize(sorted);
  }

  /** Number of addresses in the set. */
  get size(): bigint {
    return this.addresses;
  }

  /** Number of disjoint intervals (a measure of fragmentation). */
  get intervalCount(): number {
    return this.count;
  }

  min(): bigint | undefined {
    return this.chunks.length ? this.chunks[0].s[0] : undefined;
  }

  /** Removes and returns the lowest address. */
  popMin(): bigint | undefined {
    if (!this.chunks.length) return undefined;
    const c = this.chunks[0];
    const x = c.s[0];
    if (x === c.e[0]) this.removeAt(0, 0);
    else c.s[0] = x + 1n;
    this.addresses--;
    return x;
  }

  /** The lowest address >= x, or undefined when there is none (binary searches only). */
  ceiling(x: bigint): bigint | undefined {
    const ci = this.chunkFor(x);
    if (ci < 0) return this.min();
    const c = this.chunks[ci];
    const j = lastAtMost(c.s, x);
    if (c.e[j] >= x) return x;
    if (j + 1 < c.s.length) return c.s[j + 1];
    return ci + 1 < this.chunks.length ? this.chunks[ci + 1].s[0] : undefined;
  }

  has(x: bigint): boolean {
    const ci = this.chunkFor(x);
    if (ci < 0) return false;
    const c = this.chunks[ci];
    return c.e[lastAtMost(c.s, x)] >= x;
  }

  /** Adds one address, merging with its neighbours; false when it was already there. */
  add(x: bigint): boolean {
    const chunks = this.chunks;
    const ci = this.chunkFor(x);
    let pj = -1;
    if (ci >= 0) {
      pj = lastAtMost(chunks[ci].s, x);
      if (chunks[ci].e[pj] >= x) return false;
    }
    // The successor interval: next in this chunk, or first of the next chunk.
    let sci = ci < 0 ? 0 : ci;
    let sj = pj + 1;
    if (sci < chunks.length && sj >= chunks[sci].s.length) {
      sci++;
      sj = 0;
    }
    const left = ci >= 0 && chunks[ci].e[pj] + 1n === x;
    const right = sci < chunks.length && chunks[sci].s[sj] === x + 1n;
    if (left && right) {
      chunks[ci].e[pj] = chunks[sci].e[sj];
      this.removeAt(sci, sj);
    } else if (left) {
      chunks[ci].e[pj] = x;
    } else if (right) {
      chunks[sci].s[sj] = x;
    } else {
      this.insertAt(ci < 0 ? 0 : ci, pj + 1, x, x);
    }
    this.addresses++;
    return true;
  }

  /** Removes one address, splitting its interval if needed; false when it was absent. */
  delete(x: bigint): boolean {
    const ci = this.chunkFor(x);
    if (ci < 0) return false;
    const c = this.chunks[ci];
    const j = lastAtMost(c.s, x);
    const start = c.s[j];
    const end = c.e[j];
    if (end < x) return false;
    if (start === end) this.removeAt(ci, j);
    else if (x === start) c.s[j] = x + 1n;
    else if (x === end) c.e[j] = x - 1n;
    else {
      c.e[j] = x - 1n;
      this.insertAt(ci, j + 1, x + 1n, end);
    }
    this.addresses--;
    return true;
  }

  toArray(): Interval[] {
    const out: Interval[] = [];
    for (const c of this.chunks)
      for (let j = 0; j < c.s.length; j++) out.push({ start: c.s[j], end: c.e[j] });
    return out;
  }

  /** Index of the last chunk whose first start is <= x, or -1. */
  private chunkFor(x: bigint): number {
    let lo = 0;
    let hi = this.chunks.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.chunks[mid].s[0] <= x) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  private removeAt(ci: number, j: number): void {
    const c = this.chunks[ci];
    c.s.splice(j, 1);
    c.e.splice(j, 1);
    if (!c.s.length) this.chunks.splice(ci, 1);
    this.count--;
  }

  private insertAt(ci: number, j: number, start: bigint, end: bigint): void {
    this.count++;
    if (!this.chunks.length) {
      this.chunks.push({ s: [start], e: [end] });
      return;
    }
    const c = this.chunks[ci];
    c.s.splice(j, 0, start);
    c.e.splice(j, 0, end);
    if (c.s.length > MAX_CHUNK) {
      const half = c.s.length >>> 1;
      this.chunks.splice(ci + 1, 0, { s: c.s.splice(half), e: c.e.splice(half) });
    }
  }
}
