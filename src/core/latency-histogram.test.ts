import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LatencyHistogram } from './latency-histogram.ts';

const QUANTILES = [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1];

// mulberry32: a small seeded generator so a failure can be replayed.
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The nearest-rank quantile of the recorded values. */
function exactPercentile(sorted: readonly number[], q: number): number {
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1]!;
}

function histogramOf(values: readonly number[]): LatencyHistogram {
  const histogram = new LatencyHistogram();
  for (const value of values) histogram.record(value);
  return histogram;
}

function assertPercentilesClose(values: readonly number[], label: string): void {
  const histogram = histogramOf(values);
  const sorted = [...values].sort((a, b) => a - b);
  for (const q of QUANTILES) {
    const exact = exactPercentile(sorted, q);
    const reported = histogram.percentile(q);
    const error = Math.abs(reported - exact) / exact;
    assert.ok(
      error <= 0.1,
      `${label}: p${q * 100} is ${reported}, exact ${exact} (${(error * 100).toFixed(1)} % off)`,
    );
    // Percentiles are rounded up to their bucket's bound, never down.
    assert.ok(reported >= exact * (1 - 1e-9), `${label}: p${q * 100} ${reported} < ${exact}`);
  }
}

describe('LatencyHistogram', () => {
  test('an empty histogram answers 0 for every percentile, the mean and the count', () => {
    const histogram = new LatencyHistogram();
    for (const q of [0, 0.5, 0.99, 1]) assert.equal(histogram.percentile(q), 0);
    assert.equal(histogram.mean, 0);
    assert.equal(histogram.count, 0);
  });

  test('counts every recorded duration', () => {
    const histogram = histogramOf([1, 2, 3, 0, 1e6]);
    assert.equal(histogram.count, 5);
  });

  test('the mean is exact, not bucketed', () => {
    assert.equal(histogramOf([1, 2, 3, 4]).mean, 2.5);
    assert.equal(histogramOf([0.1, 0.2, 0.3]).mean, (0.1 + 0.2 + 0.3) / 3);
    assert.equal(histogramOf([7.25]).mean, 7.25);
    assert.equal(histogramOf([0, 1000]).mean, 500);
  });

  test('percentiles of a uniform 1..1000 ms distribution are within 10 %', () => {
    assertPercentilesClose(
      Array.from({ length: 1000 }, (_, i) => i + 1),
      'uniform 1..1000 ms',
    );
  });

  test('percentiles of random uniform sub-millisecond durations are within 10 %', () => {
    const seed = Date.now() % 1_000_000;
    const next = random(seed);
    assertPercentilesClose(
      Array.from({ length: 10_000 }, () => 0.05 + next() * 0.95),
      `uniform 0.05..1 ms, seed ${seed}`,
    );
  });

  test('percentiles of an exponential distribution are within 10 %', () => {
    const seed = Date.now() % 1_000_000;
    const next = random(seed);
    assertPercentilesClose(
      Array.from({ length: 20_000 }, () => 0.1 - Math.log(1 - next()) * 20),
      `exponential, mean 20 ms, seed ${seed}`,
    );
  });

  test('percentiles of a long-tailed log-normal distribution are within 10 %', () => {
    const seed = Date.now() % 1_000_000;
    const next = random(seed);
    const values = Array.from({ length: 20_000 }, () => {
      const normal = Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
      return Math.max(0.05, Math.exp(1 + 2 * normal));
    });
    assertPercentilesClose(values, `log-normal, seed ${seed}`);
  });

  test('a bimodal distribution puts p50 and p99 in their own modes', () => {
    const values = [
      ...Array.from({ length: 950 }, () => 2),
      ...Array.from({ length: 50 }, () => 500),
    ];
    const histogram = histogramOf(values);
    assert.ok(Math.abs(histogram.percentile(0.5) - 2) / 2 <= 0.1);
    assert.ok(Math.abs(histogram.percentile(0.99) - 500) / 500 <= 0.1);
  });

  test('one recorded duration is every percentile', () => {
    const histogram = histogramOf([42]);
    for (const q of [0, 0.5, 1]) {
      const reported = histogram.percentile(q);
      assert.ok(reported >= 42 && reported <= 42 * 1.1, `p${q * 100} is ${reported}`);
    }
  });

  test('durations spanning seconds to hours stay within 10 %', () => {
    assertPercentilesClose([1_000, 60_000, 3_600_000, 36_000_000], 'seconds to hours');
  });

  test('durations under a microsecond read as 0', () => {
    const histogram = histogramOf([0, 0.0001, 0.0005]);
    assert.equal(histogram.percentile(0.5), 0);
    assert.equal(histogram.percentile(1), 0);
  });
});
