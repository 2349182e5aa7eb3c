/**
 * A small benchmark harness: every competitor of a scenario runs the same
 * batch of operations once per round, in an order that rotates between rounds
 * so that no one always runs on a warmer or colder heap; the score is the
 * median of the rounds, and each is reported as a ratio to the scenario's
 * baseline, measured in the same run.
 */
export interface Competitor {
  name: string;
  /** Runs `ops` operations; resolves when they are all done. */
  run(ops: number): void | Promise<void>;
  /** Runs once before any round (subscribe, build emitters). */
  setup?(): void | Promise<void>;
  teardown?(): void | Promise<void>;
}

export interface Scenario {
  name: string;
  /** The name of the competitor every ratio is relative to. */
  baseline: string;
  ops: number;
  competitors: Competitor[];
}

export interface Score {
  scenario: string;
  competitor: string;
  opsPerSecond: number;
  ratio: number;
}

export async function runScenario(scenario: Scenario, rounds: number, warmup = 3): Promise<Score[]> {
  for (const competitor of scenario.competitors) await competitor.setup?.();
  const samples = new Map<string, number[]>(scenario.competitors.map((c) => [c.name, []]));
  for (let round = -warmup; round < rounds; round++) {
    const order = rotate(scenario.competitors, round + warmup);
    for (const competitor of order) {
      const started = process.hrtime.bigint();
      await competitor.run(scenario.ops);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (round >= 0) samples.get(competitor.name)!.push(scenario.ops / seconds);
    }
  }
  for (const competitor of scenario.competitors) await competitor.teardown?.();
  const medians = new Map([...samples].map(([name, values]) => [name, median(values)]));
  const base = medians.get(scenario.baseline);
  if (base === undefined) throw new Error(`baseline ${scenario.baseline} is not a competitor of ${scenario.name}`);
  return scenario.competitors.map((competitor) => ({
    scenario: scenario.name,
    competitor: competitor.name,
    opsPerSecond: medians.get(competitor.name)!,
    ratio: medians.get(competitor.name)! / base,
  }));
}

function rotate<T>(items: T[], by: number): T[] {
  const shift = by % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Prints a Markdown table (the same one bench/README.md keeps). */
export function printTable(scores: Score[]): void {
  console.log('| scenario | competitor | ops/s | ratio to baseline |');
  console.log('|---|---|---:|---:|');
  for (const score of scores) {
    console.log(
      `| ${score.scenario} | ${score.competitor} | ${Math.round(score.opsPerSecond).toLocaleString('en-US')} | ${score.ratio.toFixed(3)} |`,
    );
  }
}
