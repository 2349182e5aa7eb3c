/**
 * Rounds for the CDC suite: every variant once per round, in an order that
 * rotates between rounds, with work shared by the round done first (writing
 * the backlog every variant drains). Each run reports several measures; the
 * table shows their medians, and a ratio to the baseline is the median of
 * each round's ratio, so a machine busy with other work during one round
 * moves both sides of that round's ratio together. The spread (lowest and
 * highest round) is reported beside it.
 */
import { median } from './server-rounds.ts';

/** One variant: a run returns its measures by name. */
export interface Variant {
  readonly name: string;
  run(round: number): Promise<Record<string, number>>;
}

export interface RoundsOptions {
  readonly rounds: number;
  /** Rounds run first and thrown away (JIT, caches). */
  readonly warmup: number;
  /** Runs before each round's variants (a fresh backlog, say). */
  readonly beforeRound?: (round: number) => Promise<void>;
}

/** Every run's measures, by variant, in round order. */
export type Samples = Map<string, Record<string, number>[]>;

export async function runRounds(variants: readonly Variant[], options: RoundsOptions): Promise<Samples> {
  const samples: Samples = new Map(variants.map((variant) => [variant.name, []]));
  for (let round = -options.warmup; round < options.rounds; round++) {
    await options.beforeRound?.(round);
    const shift = (round + options.warmup) % variants.length;
    for (const variant of [...variants.slice(shift), ...variants.slice(0, shift)]) {
      const measures = await variant.run(round);
      if (round >= 0) samples.get(variant.name)!.push(measures);
    }
  }
  return samples;
}

export interface Spread {
  readonly median: number;
  readonly low: number;
  readonly high: number;
}

/** Median, lowest and highest of one measure of a variant over the rounds. */
export function spreadOf(samples: Samples, variant: string, measure: string): Spread {
  return spread((samples.get(variant) ?? []).map((run) => run[measure]!));
}

/** Each round's `measure` of `variant` over the baseline's, as a spread. */
export function ratioOf(samples: Samples, variant: string, baseline: string, measure: string): Spread {
  const base = samples.get(baseline) ?? [];
  return spread((samples.get(variant) ?? []).map((run, round) => run[measure]! / base[round]![measure]!));
}

/**
 * Each round's `measure` of the baseline over the variant's: for a cost per
 * operation, the throughput the variant would reach if that cost alone
 * limited it.
 */
export function costRatioOf(samples: Samples, variant: string, baseline: string, measure: string): Spread {
  const base = samples.get(baseline) ?? [];
  return spread((samples.get(variant) ?? []).map((run, round) => base[round]![measure]! / run[measure]!));
}

export function spread(values: readonly number[]): Spread {
  const finite = values.filter((value) => Number.isFinite(value));
  if (finite.length === 0) return { median: Number.NaN, low: Number.NaN, high: Number.NaN };
  return { median: median([...finite]), low: Math.min(...finite), high: Math.max(...finite) };
}

/** `0.97 (0.91–1.02)`: the median, and the lowest and highest round when there are several. */
export function formatSpread(value: Spread, digits = 2): string {
  if (Number.isNaN(value.median)) return 'n/a';
  const body = value.median.toFixed(digits);
  return value.low === value.high ? body : `${body} (${value.low.toFixed(digits)}–${value.high.toFixed(digits)})`;
}

/** The verdict cell of a target: `met` or `**missed**`, with what was measured. */
export function verdict(met: boolean): string {
  return met ? 'met' : '**missed**';
}
