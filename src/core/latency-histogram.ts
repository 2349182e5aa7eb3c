// Log-linear buckets: 8 per doubling of microseconds gives about 9 % relative
// error on a percentile, in a fixed 2 KiB per histogram whatever the traffic.
const BUCKETS_PER_DOUBLING = 8;
const BUCKETS = 40 * BUCKETS_PER_DOUBLING;

/** Records durations in milliseconds and answers percentiles in constant memory. */
export class LatencyHistogram {
  private readonly counts = new Uint32Array(BUCKETS);
  private total = 0;
  private sum = 0;

  record(ms: number): void {
    const us = ms * 1000;
    const index =
      us < 1 ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log2(us + 1) * BUCKETS_PER_DOUBLING));
    this.counts[index]!++;
    this.total++;
    this.sum += ms;
  }

  get count(): number {
    return this.total;
  }

  get mean(): number {
    return this.total === 0 ? 0 : this.sum / this.total;
  }

  /** The `q`-quantile (0..1) in milliseconds, rounded up to its bucket's bound; 0 when empty. */
  percentile(q: number): number {
    if (this.total === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let index = 0; index < BUCKETS; index++) {
      seen += this.counts[index]!;
      if (seen >= rank) return (2 ** (index / BUCKETS_PER_DOUBLING) - 1) / 1000;
    }
    return 0;
  }
}
