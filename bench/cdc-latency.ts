/**
 * Part 2: commit → subscriber latency at a steady moderate rate. pgbench
 * (its own process, so the reader under test shares its event loop with
 * nothing) commits single-row INSERTs at a fixed rate; each reader records,
 * per row, the wall-clock time it received it minus when it committed.
 * pgoutput readers take the commit time from the stream (Busbar's
 * `data.timestamp`, the raw reader's Commit message); the LISTEN client takes
 * `clock_timestamp()` the trigger stamped into the row just before commit.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ChangeData } from '../src/cdc/change.ts';
import { createPostgresCdc } from '../src/cdc/postgres-cdc.ts';
import type { BusbarEvent } from '../src/core/event.ts';
import { createBus } from '../src/index.ts';
import type { EventLog } from '../src/core/event-log.ts';
import { createSqliteStore } from '../src/store/sqlite/index.ts';
import { microsOf, nowMicros } from './cdc-clock.ts';
import { advanceSlot, type BenchDatabase, createSlot, pgbench, rowCount, until } from './cdc-database.ts';
import { installSeedTrigger, listenReader, type RawReader, rawPgoutputReader } from './cdc-raw-readers.ts';
import { runRounds, type Samples, type Variant } from './cdc-rounds.ts';

export const RAW_PGOUTPUT = 'raw pgoutput reader (commit time only)';
export const BUSBAR_MEMORY_BUS = 'busbar → memory bus → subscriber';
export const BUSBAR_SQLITE_BUS = 'busbar → SQLite-store bus → subscriber';
export const RAW_NOTIFY = 'raw LISTEN/NOTIFY (trigger sends the row)';

const CHANNEL = 'bench_latency';
const RAW_SLOT = 'latency_raw';
const BUSBAR_SLOT = 'latency_busbar';

/** Latencies of one run, preallocated: recording one is a store, never an allocation. */
class Latencies {
  private readonly values: Float64Array;
  private size = 0;

  constructor(capacity: number) {
    this.values = new Float64Array(capacity);
  }

  get count(): number {
    return this.size;
  }

  clear(): void {
    this.size = 0;
  }

  record(micros: number): void {
    if (this.size < this.values.length) this.values[this.size] = micros;
    this.size++;
  }

  /** p50, p99 and max in ms. */
  summary(): Record<string, number> {
    const sorted = this.values.slice(0, Math.min(this.size, this.values.length)).sort();
    const at = (quantile: number) => sorted[Math.min(sorted.length - 1, Math.floor(quantile * sorted.length))]! / 1000;
    return { p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1]! / 1000, samples: sorted.length };
  }
}

export async function createLatencySchema(database: BenchDatabase): Promise<void> {
  const columns = `id bigserial PRIMARY KEY, sent_us bigint NOT NULL DEFAULT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint, note text`;
  await database.admin.query(`CREATE TABLE latency_events (${columns}); CREATE TABLE latency_notify (${columns})`);
  await installSeedTrigger(database.admin, 'latency_notify', CHANNEL);
  await createSlot(database, RAW_SLOT);
  await createSlot(database, BUSBAR_SLOT);
}

export async function latency(
  database: BenchDatabase,
  options: { rounds: number; warmup: number; rate: number; seconds: number; directory: string },
): Promise<Samples> {
  const capacity = options.rate * options.seconds * 2;
  /** Attaches a reader, runs pgbench at the rate into `table`, waits for every row, detaches. */
  const measure = async (table: string, attach: (latencies: Latencies) => Promise<RawReader>): Promise<Record<string, number>> => {
    const latencies = new Latencies(capacity);
    const reader = await attach(latencies);
    try {
      await reader.started;
      // One row first, so what a session does once (looking up the table's
      // types, compiling) is not counted as latency at the steady rate.
      await database.admin.query(`INSERT INTO ${table} (note) VALUES ('warm-up')`);
      await until(() => latencies.count > 0, `the warm-up row to reach the reader of ${table}`);
      latencies.clear();
      const before = await rowCount(database, table);
      await pgbench(database, `INSERT INTO ${table} (note) VALUES ('client ' || :client_id);`, {
        clients: 2,
        threads: 1,
        seconds: options.seconds,
        rate: options.rate,
        file: join(options.directory, `${table}.sql`),
      });
      const expected = (await rowCount(database, table)) - before;
      await until(() => latencies.count >= expected, `${expected} rows to reach the reader of ${table} (${latencies.count} did)`);
      if (latencies.count !== expected) throw new Error(`${latencies.count} rows reached the reader of ${table}, ${expected} were committed`);
      return { ...latencies.summary(), rate: expected / options.seconds };
    } finally {
      await reader.stop();
    }
  };

  const busbar = (store: () => EventLog | undefined) => async (latencies: Latencies): Promise<RawReader> => {
    await advanceSlot(database, BUSBAR_SLOT);
    const bus = createBus(store() === undefined ? {} : { store: store()! });
    bus.subscribe('latency', 'cdc.public.latency_events.insert', (event: BusbarEvent) => {
      latencies.record(nowMicros() - microsOf((event.data as ChangeData).timestamp));
    });
    let connected!: () => void;
    const started = new Promise<void>((resolve) => (connected = resolve));
    const cdc = createPostgresCdc({
      connectionString: database.url,
      slotName: BUSBAR_SLOT,
      publicationName: 'bench',
      bus,
      handlers: [{ onConnect: () => connected() }],
      onWarning: () => {},
    });
    cdc.start();
    return {
      started,
      async stop() {
        await cdc.close();
        await bus.close();
      },
    };
  };

  let sqliteDirectory: string | undefined;
  const variants: Variant[] = [
    {
      name: RAW_PGOUTPUT,
      run: () =>
        measure('latency_events', async (latencies) => {
          await advanceSlot(database, RAW_SLOT);
          return rawPgoutputReader(database.url, RAW_SLOT, (commit) => latencies.record(nowMicros() - commit));
        }),
    },
    { name: BUSBAR_MEMORY_BUS, run: () => measure('latency_events', busbar(() => undefined)) },
    {
      name: BUSBAR_SQLITE_BUS,
      async run() {
        sqliteDirectory = mkdtempSync(join(options.directory, 'latency-'));
        const path = join(sqliteDirectory, 'bus.db');
        const store = createSqliteStore({ path, synchronous: 'full' });
        try {
          return await measure('latency_events', busbar(() => store));
        } finally {
          await store.close();
          rmSync(sqliteDirectory, { recursive: true, force: true });
        }
      },
    },
    {
      name: RAW_NOTIFY,
      run: () =>
        measure('latency_notify', async (latencies) =>
          listenReader(database.url, CHANNEL, (row) => latencies.record(nowMicros() - Number(row.sent_us))),
        ),
    },
  ];
  return runRounds(variants, { rounds: options.rounds, warmup: options.warmup });
}
