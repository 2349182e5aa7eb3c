/**
 * Rounds for the server suite, as bench/harness.ts runs them (every
 * competitor once per round, in an order that rotates between rounds,
 * medians over the rounds), but for measurements that report several
 * numbers each (rate, latency percentiles, CPU shares) rather than a time.
 */

/** One competitor: a run returns its measures by name. */
export interface Trial {
  name: string;
  run(): Promise<Record<string, number>>;
}

/** The median of each measure of each trial, by trial name. */
export type Medians = Map<string, Record<string, number>>;

export async function runRounds(trials: Trial[], rounds: number, warmup = 1): Promise<Medians> {
  const samples = new Map<string, Record<string, number>[]>(trials.map((trial) => [trial.name, []]));
  for (let round = -warmup; round < rounds; round++) {
    const shift = (round + warmup) % trials.length;
    for (const trial of [...trials.slice(shift), ...trials.slice(0, shift)]) {
      const measures = await trial.run();
      if (round >= 0) samples.get(trial.name)!.push(measures);
    }
  }
  const medians: Medians = new Map();
  for (const [name, runs] of samples) {
    const names = Object.keys(runs[0] ?? {});
    medians.set(name, Object.fromEntries(names.map((measure) => [measure, median(runs.map((run) => run[measure]!))])));
  }
  return medians;
}

export function median(values: number[]): number {
  const sorted = values.filter((value) => !Number.isNaN(value)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** A Markdown table: the header row, then one row per entry. */
export function printMarkdownTable(header: string[], rows: (string | number)[][]): void {
  console.log(`| ${header.join(' | ')} |`);
  console.log(`|${header.map((_, index) => (index < 2 ? '---' : '---:')).join('|')}|`);
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
}

/** 12,345 */
export function count(value: number): string {
  return Number.isNaN(value) ? 'n/a' : Math.round(value).toLocaleString('en-US');
}

/** 1.23 (or n/a) */
export function decimals(value: number, digits = 2): string {
  return Number.isNaN(value) ? 'n/a' : value.toFixed(digits);
}
