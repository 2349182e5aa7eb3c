/**
 * Latencies in fixed 10 µs buckets up to 20 s (one more for anything
 * slower): a million deliveries a second cost one increment each, and the
 * memory is fixed whatever the run's length. Histograms from several
 * processes add up bucket by bucket.
 */
const BUCKET_MS = 0.01;
const BUCKETS = 2_000_000;

export class LatencyHistogram {
  readonly counts = new Uint32Array(BUCKETS + 1);
  count = 0;
  maxMs = 0;

  record(ms: number): void {
    const bucket = ms <= 0 ? 0 : Math.min(BUCKETS, Math.floor(ms / BUCKET_MS));
    this.counts[bucket]!++;
    this.count++;
    if (ms > this.maxMs) this.maxMs = ms;
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.maxMs = 0;
  }

  /** The latency below which `fraction` of the samples lie, ms (the bucket's upper edge). */
  percentile(fraction: number): number {
    if (this.count === 0) return Number.NaN;
    const wanted = Math.ceil(this.count * fraction);
    let seen = 0;
    for (let bucket = 0; bucket <= BUCKETS; bucket++) {
      seen += this.counts[bucket]!;
      if (seen >= wanted) return bucket === BUCKETS ? this.maxMs : (bucket + 1) * BUCKET_MS;
    }
    return this.maxMs;
  }

  /** What a child reports: the percentiles the tables print. */
  summary(): LatencySummary {
    return { count: this.count, p50: this.percentile(0.5), p99: this.percentile(0.99), max: this.maxMs };
  }
}

export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

/** Wall-clock time in ms with sub-millisecond precision, comparable across the processes of one machine. */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}
