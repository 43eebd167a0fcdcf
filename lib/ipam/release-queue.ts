// Addresses ordered by release time, oldest first: the reuse order of the allocator (design §2:
// reuse prefers the least recently released address). Entries are not removed when their
// address changes state; an entry is live while `live` maps its address to the entry's time,
// and stale entries are skipped and compacted away (lazy deletion), so every operation is
// O(1) amortised, or a binary search and a splice for an out-of-order release time.

export class ReleaseQueue {
  private ips: bigint[] = [];
  private ats: number[] = [];
  private head = 0;

  /** `live`: address → release time of the addresses this queue holds (owned by the caller). */
  constructor(private readonly live: ReadonlyMap<bigint, number>) {}

  /** Queues an address at its release time (the caller sets `live` too). */
  push(ip: bigint, at: number): void {
    const n = this.ips.length;
    if (this.head === n || at >= this.ats[n - 1]) {
      this.ips.push(ip);
      this.ats.push(at);
    } else {
      // Out-of-order release time (a late event): insert after every entry with time <= at.
      let lo = this.head;
      let hi = n;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (this.ats[mid] <= at) lo = mid + 1;
        else hi = mid;
      }
      this.ips.splice(lo, 0, ip);
      this.ats.splice(lo, 0, at);
    }
    // Stale entries accumulate when queued addresses change state: drop them once they
    // outnumber the live ones, so memory follows the live entries.
    if (this.ips.length - this.head > 2 * this.live.size + 1024) this.compact();
  }

  /** True when a live entry is at the head (stale ones are dropped on the way). */
  peek(): boolean {
    while (
      this.head < this.ips.length &&
      this.live.get(this.ips[this.head]) !== this.ats[this.head]
    )
      this.head++;
    if (this.head > 1024 && this.head * 2 > this.ips.length) this.compact();
    return this.head < this.ips.length;
  }

  /** The head entry's address and time; call peek() first. */
  get headIp(): bigint {
    return this.ips[this.head];
  }

  get headAt(): number {
    return this.ats[this.head];
  }

  /** Drops the head entry (after peek() returned true). */
  shift(): void {
    this.head++;
  }

  /** Replaces the content with `entries`, which must be sorted by time. */
  reset(entries: readonly (readonly [bigint, number])[]): void {
    this.ips = entries.map(e => e[0]);
    this.ats = entries.map(e => e[1]);
    this.head = 0;
  }

  private compact(): void {
    const ips: bigint[] = [];
    const ats: number[] = [];
    for (let i = this.head; i < this.ips.length; i++) {
      if (this.live.get(this.ips[i]) === this.ats[i]) {
        ips.push(this.ips[i]);
        ats.push(this.ats[i]);
      }
    }
    this.ips = ips;
    this.ats = ats;
    this.head = 0;
  }
}
