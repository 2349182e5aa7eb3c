/**
 * The change-data-capture suite (issue 4 §8), every number measured in the
 * same run against its raw limit, on a private PostgreSQL with
 * `wal_level=logical` that the suite starts and deletes:
 *
 * 1. catch-up decode rows/s against pg_recvlogical (cdc-catch-up.ts);
 * 2. commit → subscriber latency against a raw pgoutput reader and raw
 *    LISTEN/NOTIFY (cdc-latency.ts);
 * 3. 8 writers' commits/s with each kind of capture attached, and 4. the
 *    drain lag while they write flat out (cdc-writers.ts).
 *
 * Each measurement takes seconds, so the suite runs at most
 * {@link MAX_ROUNDS} rounds (after one warm-up) whatever `--rounds` asks.
 * Environment: `BUSBAR_BENCH_DIR` (SQLite files), `PG_BIN` (PostgreSQL's
 * programs), `BUSBAR_BENCH_CDC_PARTS` (a comma list of `catch-up`,
 * `latency`, `writers`: run only those).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { BUSBAR_DECODE, BUSBAR_MEMORY, BUSBAR_SQLITE, catchUp, type CatchUpResult, createCatchUpSchema, RAW_DRAIN } from './cdc-catch-up.ts';
import { type BenchDatabase, loadAverage, PUBLICATION, startBenchDatabase } from './cdc-database.ts';
import { BUSBAR_MEMORY_BUS, BUSBAR_SQLITE_BUS, createLatencySchema, latency, RAW_NOTIFY, RAW_PGOUTPUT } from './cdc-latency.ts';
import { costRatioOf, formatSpread, ratioOf, type Samples, spreadOf, verdict } from './cdc-rounds.ts';
import { BUSBAR_REPLICATION, BUSBAR_TRIGGER, createWritersSchema, NO_CAPTURE, RECVLOGICAL_ATTACHED, SEED, writers } from './cdc-writers.ts';
import { count, printMarkdownTable } from './server-rounds.ts';
import { filesystemOf } from './store.bench.ts';

const MAX_ROUNDS = 3;
const LATENCY_RATE = 1000;
const LATENCY_SECONDS = 4;
const WRITER_SECONDS = 3;
const PARTS = ['catch-up', 'latency', 'writers'] as const;

export async function run(requestedRounds: number, scale: number): Promise<void> {
  const quick = scale < 1;
  const rounds = quick ? 1 : Math.min(requestedRounds, MAX_ROUNDS);
  const warmup = quick ? 0 : 1;
  const parts = new Set(process.env.BUSBAR_BENCH_CDC_PARTS?.split(',') ?? PARTS);
  for (const part of parts) if (!(PARTS as readonly string[]).includes(part)) throw new Error(`BUSBAR_BENCH_CDC_PARTS: no part "${part}"; known: ${PARTS.join(', ')}`);
  const chosen = process.env.BUSBAR_BENCH_DIR ?? (filesystemOf(tmpdir()) === 'tmpfs' ? '/var/tmp' : tmpdir());
  const directory = mkdtempSync(join(chosen, 'busbar-bench-cdc-'));
  const loads: string[] = [`start ${loadAverage()}`];
  const database = await startBenchDatabase();
  const targets: string[][] = [];
  try {
    await createCatchUpSchema(database);
    await createLatencySchema(database);
    await createWritersSchema(database);
    await database.admin.query(
      `CREATE PUBLICATION ${PUBLICATION} FOR TABLE catch_up_single, catch_up_batch, catch_up_update, latency_events, writers_replicated`,
    );
    console.log(`## Change data capture\n`);
    printNotes(database, { rounds, warmup, directory, quick });

    if (parts.has('catch-up')) {
      const results = await catchUp(database, { rounds, warmup, scale, directory });
      loads.push(`after catch-up ${loadAverage()}`);
      targets.push(...printCatchUp(results));
    }
    if (parts.has('latency')) {
      const samples = await latency(database, { rounds, warmup, rate: LATENCY_RATE, seconds: quick ? 2 : LATENCY_SECONDS, directory });
      loads.push(`after latency ${loadAverage()}`);
      targets.push(...printLatency(samples));
    }
    if (parts.has('writers')) {
      // Short runs, twice as many: the machine's other load comes in bursts of seconds.
      const samples = await writers(database, { rounds: quick ? rounds : 2 * rounds, warmup, seconds: quick ? 2 : WRITER_SECONDS, directory });
      loads.push(`after writers ${loadAverage()}`);
      targets.push(...printWriters(samples));
    }
  } finally {
    await database.stop();
    rmSync(directory, { recursive: true, force: true });
  }
  console.log('### Targets\n');
  printMarkdownTable(['target', 'measured (median of the rounds; lowest–highest round)', 'verdict'], targets);
  console.log(`\n- load average (1 min) of the shared machine: ${loads.join(', ')}\n`);
}

function printNotes(database: BenchDatabase, options: { rounds: number; warmup: number; directory: string; quick: boolean }): void {
  const settings = Object.entries(database.settings)
    .filter(([name]) => name !== 'server_version')
    .map(([name, value]) => `${name} = ${value}`)
    .join(', ');
  console.log(
    `- ${options.rounds} round(s) after ${options.warmup} warm-up (the suite runs at most ${MAX_ROUNDS}; the writers part twice as many, ` +
      `of ${options.quick ? 2 : WRITER_SECONDS} s), variants in rotating order;`,
  );
  console.log(`  ratios are the median of each round's ratio, with the lowest and highest round in brackets`);
  console.log(`- ${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown CPU'}), ${Math.round(totalmem() / 2 ** 30)} GB, shared by every process`);
  console.log(`- private PostgreSQL ${database.version} (${database.bin}): ${settings}`);
  console.log(`- SQLite files in ${options.directory} (${filesystemOf(options.directory)}), synchronous = FULL\n`);
}

function printCatchUp(results: CatchUpResult[]): string[][] {
  console.log('### 1. Catch-up: drain a backlog written before the reader starts\n');
  const rows: (string | number)[][] = [];
  const targets: string[][] = [];
  for (const { workload, rows: total, samples } of results) {
    for (const reader of [RAW_DRAIN, BUSBAR_DECODE, BUSBAR_MEMORY, BUSBAR_SQLITE]) {
      rows.push([
        `${workload}, ${count(total)} rows`,
        reader,
        count(spreadOf(samples, reader, 'rowsPerSecond').median),
        formatSpread(ratioOf(samples, reader, RAW_DRAIN, 'rowsPerSecond')),
        spreadOf(samples, reader, 'clientUs').median.toFixed(2),
        spreadOf(samples, reader, 'walsenderUs').median.toFixed(2),
      ]);
    }
    const decode = ratioOf(samples, BUSBAR_DECODE, RAW_DRAIN, 'rowsPerSecond');
    targets.push([`catch-up decode ≥ 1.0× pg_recvlogical: ${workload}`, `${formatSpread(decode)}×`, verdict(decode.median >= 1)]);
  }
  printMarkdownTable(['workload', 'reader', 'rows/s', 'ratio to pg_recvlogical', 'reader CPU µs/row', 'walsender CPU µs/row'], rows);
  console.log('');
  return targets;
}

function printLatency(samples: Samples): string[][] {
  console.log(`### 2. Commit → subscriber latency, ${LATENCY_RATE} single-row commits/s\n`);
  const readers = [RAW_PGOUTPUT, BUSBAR_MEMORY_BUS, BUSBAR_SQLITE_BUS, RAW_NOTIFY];
  printMarkdownTable(
    ['reader', 'p50 ms', 'p99 ms', 'max ms', 'p99 ratio to raw pgoutput', 'commits/s reached'],
    readers.map((reader) => [
      reader,
      formatSpread(spreadOf(samples, reader, 'p50')),
      formatSpread(spreadOf(samples, reader, 'p99')),
      formatSpread(spreadOf(samples, reader, 'max'), 1),
      formatSpread(ratioOf(samples, reader, RAW_PGOUTPUT, 'p99')),
      count(spreadOf(samples, reader, 'rate').median),
    ]),
  );
  console.log('');
  return [BUSBAR_MEMORY_BUS, BUSBAR_SQLITE_BUS].map((reader) => {
    const ratio = ratioOf(samples, reader, RAW_PGOUTPUT, 'p99');
    return [`p99 latency ≤ 1.2× the raw pgoutput reader: ${reader}`, `${formatSpread(ratio)}×`, verdict(ratio.median <= 1.2)];
  });
}

function printWriters(samples: Samples): string[][] {
  console.log('### 3. Writers: 8 pgbench clients, single-row INSERT commits, flat out\n');
  const variants = [NO_CAPTURE, RECVLOGICAL_ATTACHED, BUSBAR_REPLICATION, BUSBAR_TRIGGER, SEED];
  printMarkdownTable(
    [
      'capture',
      'writers tx/s',
      'ratio to no capture',
      'server CPU µs/row',
      'reader CPU µs/row',
      'CPU ratio, server only',
      'CPU ratio, server + reader',
      'reader CPU (cores)',
      'walsender CPU (cores)',
      'drain after writers stop, ms',
    ],
    variants.map((variant) => [
      variant,
      count(spreadOf(samples, variant, 'tps').median),
      formatSpread(ratioOf(samples, variant, NO_CAPTURE, 'tps')),
      spreadOf(samples, variant, 'serverUsPerRow').median.toFixed(0),
      spreadOf(samples, variant, 'readerUsPerRow').median.toFixed(0),
      formatSpread(costRatioOf(samples, variant, NO_CAPTURE, 'serverUsPerRow')),
      formatSpread(costRatioOf(samples, variant, NO_CAPTURE, 'machineUsPerRow')),
      formatSpread(spreadOf(samples, variant, 'readerCores')),
      formatSpread(spreadOf(samples, variant, 'walsenderCores')),
      formatSpread(spreadOf(samples, variant, 'drainMs'), 0),
    ]),
  );
  console.log('\n### 4. Drain lag while the writers run flat out (commit → committed in the bus\'s store)\n');
  printMarkdownTable(
    ['capture', 'lag p50 ms', 'lag p99 ms', 'lag max ms'],
    [BUSBAR_REPLICATION, BUSBAR_TRIGGER].map((variant) => [
      variant,
      formatSpread(spreadOf(samples, variant, 'lagP50Ms'), 1),
      formatSpread(spreadOf(samples, variant, 'lagP99Ms'), 1),
      formatSpread(spreadOf(samples, variant, 'lagMaxMs'), 1),
    ]),
  );
  console.log('');
  const replication = ratioOf(samples, BUSBAR_REPLICATION, NO_CAPTURE, 'tps');
  const trigger = ratioOf(samples, BUSBAR_TRIGGER, NO_CAPTURE, 'tps');
  const cpu = (variant: string) =>
    `(CPU ratio: server only ${formatSpread(costRatioOf(samples, variant, NO_CAPTURE, 'serverUsPerRow'))}, ` +
    `server + reader ${formatSpread(costRatioOf(samples, variant, NO_CAPTURE, 'machineUsPerRow'))})`;
  const targets = [
    ['writers with replication mode ≥ 0.95× no capture', `${formatSpread(replication)}× ${cpu(BUSBAR_REPLICATION)}`, verdict(replication.median >= 0.95)],
    ['writers with trigger mode ≥ 0.85× no capture', `${formatSpread(trigger)}× ${cpu(BUSBAR_TRIGGER)}`, verdict(trigger.median >= 0.85)],
  ];
  for (const variant of [BUSBAR_REPLICATION, BUSBAR_TRIGGER]) {
    const worst = spreadOf(samples, variant, 'lagMaxMs');
    const p99 = spreadOf(samples, variant, 'lagP99Ms');
    targets.push([
      `drain lag ≤ 1 s at the highest sustained write rate: ${variant}`,
      `p99 ${formatSpread(p99, 0)} ms, max ${worst.high.toFixed(0)} ms`,
      verdict(worst.high <= 1000),
    ]);
  }
  return targets;
}
