// Sets of addresses as sorted, disjoint, inclusive bigint intervals.

export interface Interval {
  lo: bigint;
  hi: bigint;
}

/** Sorts and merges intervals (touching ones too). */
export function normalize(list: readonly Interval[]): Interval[] {
  const sorted = list
    .filter(i => i.lo <= i.hi)
    .sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
  const out: Interval[] = [];
  for (const i of sorted) {
    const last = out[out.length - 1];
    if (last && i.lo <= last.hi + 1n) {
      if (i.hi > last.hi) last.hi = i.hi;
    } else {
      out.push({ lo: i.lo, hi: i.hi });
    }
  }
  return out;
}

/** `set` minus `remove`; both must be normalized. */
export function subtract(set: readonly Interval[], remove: readonly Interval[]): Interval[] {
  const out: Interval[] = [];
  let j = 0;
  for (const s of set) {
    let lo = s.lo;
    while (j < remove.length && remove[j].hi < lo) j++;
    let k = j;
    while (k < remove.length && remove[k].lo <= s.hi && lo <= s.hi) {
      const r = remove[k];
      if (r.lo > lo) out.push({ lo, hi: r.lo - 1n });
      lo = r.hi + 1n;
      k++;
    }
    if (lo <= s.hi) out.push({ lo, hi: s.hi });
  }
  return out;
}

export const size = (set: readonly Interval[]): bigint =>
  set.reduce((n, i) => n + (i.hi - i.lo + 1n), 0n);

export function contains(set: readonly Interval[], v: bigint): boolean {
  let lo = 0;
  let hi = set.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (v < set[mid].lo) hi = mid - 1;
    else if (v > set[mid].hi) lo = mid + 1;
    else return true;
  }
  return false;
}
