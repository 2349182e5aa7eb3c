/**
 * Part 1: catch-up decode. Each round creates one slot per variant, then
 * writes the backlog, so every variant drains the same WAL from its own
 * slot; the time runs from the stream's start (connecting is not counted)
 * to having received every row. `pg_recvlogical` writing pgoutput to
 * /dev/null is the raw limit; Busbar's replication source into a sink that
 * only counts is its decode cost; `createPostgresCdc` into a durable bus is
 * the full path.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { CaptureSource, ChangeSink } from '../src/cdc/capture-source.ts';
import { createPostgresCdc } from '../src/cdc/postgres-cdc.ts';
import { createReplicationSource } from '../src/cdc/replication/replication-source.ts';
import type { CdcBus } from '../src/cdc/change-sink.ts';
import { createBus } from '../src/index.ts';
import type { EventLog } from '../src/core/event-log.ts';
import { createMemoryStore } from '../src/store/index.ts';
import { createSqliteStore } from '../src/store/sqlite/index.ts';
import {
  type BenchDatabase,
  CpuWatch,
  createSlot,
  dropSlot,
  flushedEnd,
  ownCpuSeconds,
  PUBLICATION,
  recvlogicalUntil,
} from './cdc-database.ts';
import { runRounds, type Samples, type Variant } from './cdc-rounds.ts';

/** How long one drain may take before the suite gives up on it. */
const DRAIN_DEADLINE_MS = 300_000;
const TRANSACTION_ROWS = 1000;

export const RAW_DRAIN = 'pg_recvlogical (pgoutput → /dev/null)';
export const BUSBAR_DECODE = 'busbar replication source → counting sink';
export const BUSBAR_MEMORY = 'busbar → durable bus, memory store';
export const BUSBAR_SQLITE = 'busbar → durable bus, SQLite store (fsync)';

interface Workload {
  readonly name: string;
  readonly table: string;
  readonly rows: number;
  /** Before the round's slots exist: what must not be in their WAL. */
  prepare(database: BenchDatabase): Promise<void>;
  /** After the slots exist: the backlog. */
  write(database: BenchDatabase): Promise<void>;
}

/** The three tables (one per workload, all in the publication) and the procedures that fill them. */
export async function createCatchUpSchema(database: BenchDatabase): Promise<void> {
  const columns = `id bigint PRIMARY KEY, name text NOT NULL, amount numeric(12,2), quantity int, at timestamptz NOT NULL DEFAULT now()`;
  await database.admin.query(`
    CREATE TABLE catch_up_single (${columns});
    CREATE TABLE catch_up_batch (${columns});
    CREATE TABLE catch_up_update (${columns});
    -- One transaction per row, or per ${TRANSACTION_ROWS} rows: COMMIT inside a procedure, so loading is not a client's round trips.
    CREATE PROCEDURE load_rows(target regclass, total int, per_transaction int) LANGUAGE plpgsql AS $$
    BEGIN
      FOR lo IN 1..total BY per_transaction LOOP
        EXECUTE format('INSERT INTO %s (id, name, amount, quantity) SELECT g, ''customer '' || g, g * 1.25, g %% 100
                        FROM generate_series($1, $2) g', target) USING lo, least(lo + per_transaction - 1, total);
        COMMIT;
      END LOOP;
    END $$;
    CREATE PROCEDURE update_rows(target regclass, total int, per_transaction int) LANGUAGE plpgsql AS $$
    BEGIN
      FOR lo IN 1..total BY per_transaction LOOP
        EXECUTE format('UPDATE %s SET amount = amount + 1, quantity = quantity + 1 WHERE id BETWEEN $1 AND $2', target)
          USING lo, least(lo + per_transaction - 1, total);
        COMMIT;
      END LOOP;
    END $$;
  `);
}

/** Runs the loading procedure on a connection that does not wait for each flush (loading is not what is measured). */
async function call(database: BenchDatabase, sql: string): Promise<void> {
  const client = await database.admin.connect();
  try {
    await client.query('SET synchronous_commit = off');
    await client.query(sql);
  } finally {
    client.release();
  }
}

function workloads(singleRows: number, batchRows: number): Workload[] {
  let filled = false;
  return [
    {
      name: 'single-row transactions',
      table: 'catch_up_single',
      rows: singleRows,
      prepare: (database) => database.admin.query('TRUNCATE catch_up_single').then(() => {}),
      write: (database) => call(database, `CALL load_rows('catch_up_single', ${singleRows}, 1)`),
    },
    {
      name: `${TRANSACTION_ROWS}-row transactions`,
      table: 'catch_up_batch',
      rows: batchRows,
      prepare: (database) => database.admin.query('TRUNCATE catch_up_batch').then(() => {}),
      write: (database) => call(database, `CALL load_rows('catch_up_batch', ${batchRows}, ${TRANSACTION_ROWS})`),
    },
    {
      name: `UPDATE of existing rows, ${TRANSACTION_ROWS} per transaction (REPLICA IDENTITY FULL)`,
      table: 'catch_up_update',
      rows: batchRows,
      async prepare(database) {
        if (filled) return;
        filled = true;
        await database.admin.query('ALTER TABLE catch_up_update REPLICA IDENTITY FULL');
        await call(database, `CALL load_rows('catch_up_update', ${batchRows}, ${batchRows})`);
      },
      write: (database) => call(database, `CALL update_rows('catch_up_update', ${batchRows}, ${TRANSACTION_ROWS})`),
    },
  ];
}

export interface CatchUpResult {
  readonly workload: string;
  readonly rows: number;
  readonly samples: Samples;
}

export async function catchUp(
  database: BenchDatabase,
  options: { rounds: number; warmup: number; scale: number; directory: string },
): Promise<CatchUpResult[]> {
  const results: CatchUpResult[] = [];
  const variants = [RAW_DRAIN, BUSBAR_DECODE, BUSBAR_MEMORY, BUSBAR_SQLITE];
  const slotOf = (variant: string) => `catch_up_${variants.indexOf(variant)}`;
  for (const workload of workloads(Math.round(50_000 * options.scale), Math.round(100_000 * options.scale))) {
    let endpos = '';
    const drain = (name: string, measure: (slot: string) => Promise<Record<string, number>>): Variant => ({
      name,
      async run() {
        try {
          return await measure(slotOf(name));
        } finally {
          await dropSlot(database, slotOf(name));
        }
      },
    });
    const samples = await runRounds(
      [
        drain(RAW_DRAIN, async (slot) => {
          const watch = new CpuWatch();
          void watch.trackWalsender(database, slot);
          const seconds = await recvlogicalUntil(database, slot, endpos, watch);
          return perRow(workload.rows, seconds, watch.stop());
        }),
        drain(BUSBAR_DECODE, (slot) => drainIntoCountingSink(database, slot, workload.rows)),
        drain(BUSBAR_MEMORY, (slot) => drainIntoBus(database, slot, workload.rows, createMemoryStore())),
        drain(BUSBAR_SQLITE, async (slot) => {
          const directory = mkdtempSync(join(options.directory, 'catch-up-'));
          try {
            return await drainIntoBus(database, slot, workload.rows, createSqliteStore({ path: join(directory, 'bus.db'), synchronous: 'full' }));
          } finally {
            rmSync(directory, { recursive: true, force: true });
          }
        }),
      ],
      {
        rounds: options.rounds,
        warmup: options.warmup,
        async beforeRound() {
          await workload.prepare(database);
          for (const variant of variants) await createSlot(database, slotOf(variant));
          await workload.write(database);
          endpos = await flushedEnd(database);
        },
      },
    );
    results.push({ workload: workload.name, rows: workload.rows, samples });
  }
  return results;
}

/** rows/s, and CPU µs per row of the reader (`client`) and of the walsender decoding for it. */
function perRow(rows: number, seconds: number, cpu: Record<string, number>): Record<string, number> {
  return {
    rowsPerSecond: rows / seconds,
    clientUs: ((cpu.client ?? Number.NaN) * 1e6) / rows,
    walsenderUs: ((cpu.walsender ?? Number.NaN) * 1e6) / rows,
  };
}

/** Busbar's replication source alone: decoding, mapping values, assembling transactions. */
async function drainIntoCountingSink(database: BenchDatabase, slot: string, rows: number): Promise<Record<string, number>> {
  const source: CaptureSource = createReplicationSource({
    connectionString: database.url,
    slotName: slot,
    publicationName: PUBLICATION,
    onWarning: () => {},
  });
  const arrived = countdown(rows);
  const sink: ChangeSink = {
    deliver(transaction) {
      arrived.add(transaction.changes.length);
      return Promise.resolve();
    },
  };
  const stop = new AbortController();
  const watch = new CpuWatch();
  const cpuBefore = ownCpuSeconds();
  let started = process.hrtime.bigint();
  const streaming = source.stream(sink, stop.signal, () => (started = process.hrtime.bigint()));
  void watch.trackWalsender(database, slot);
  try {
    await Promise.race([arrived.done, streaming.then(() => Promise.reject(new Error('the replication stream ended before catching up')))]);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const client = ownCpuSeconds() - cpuBefore;
    return perRow(rows, seconds, { ...watch.stop(), client });
  } finally {
    stop.abort();
    await streaming.catch(() => {});
    await source.close();
  }
}

/** The full path: `createPostgresCdc` publishing every transaction into a bus with `store`. */
async function drainIntoBus(database: BenchDatabase, slot: string, rows: number, store: EventLog): Promise<Record<string, number>> {
  const bus = createBus({ store });
  const arrived = countdown(rows);
  let failed!: (error: Error) => void;
  const failure = new Promise<never>((_, reject) => (failed = reject));
  let started = process.hrtime.bigint();
  const cdc = createPostgresCdc({
    connectionString: database.url,
    slotName: slot,
    publicationName: PUBLICATION,
    bus: countingBus(bus, arrived),
    // The clock starts when streaming does, as it does for pg_recvlogical.
    handlers: [{ onConnect: () => void (started = process.hrtime.bigint()) }],
    onError: (error) => failed(error),
    onWarning: () => {},
  });
  const watch = new CpuWatch();
  const cpuBefore = ownCpuSeconds();
  cdc.start();
  void watch.trackWalsender(database, slot);
  try {
    await Promise.race([arrived.done, failure]);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const client = ownCpuSeconds() - cpuBefore;
    return perRow(rows, seconds, { ...watch.stop(), client });
  } finally {
    await cdc.close();
    await bus.close();
    await (store as { close?: () => Promise<void> | void }).close?.();
  }
}

/** The bus, counting the changes whose publish resolved (in the store: committed). */
function countingBus(bus: ReturnType<typeof createBus>, arrived: { add(count: number): void }): CdcBus {
  return {
    publishEvent: (event) => bus.publishEvent(event),
    async publishEvents(events) {
      const receipts = await bus.publishEvents(events);
      arrived.add(events.length);
      return receipts;
    },
  };
}

/** Resolves `done` once `expected` have been added; fails if more arrive (a duplicate) or none come in time. */
function countdown(expected: number): { add(count: number): void; done: Promise<void>; readonly count: number } {
  let count = 0;
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const done = new Promise<void>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  const timer = setTimeout(() => reject(new Error(`only ${count} of ${expected} changes arrived in ${DRAIN_DEADLINE_MS} ms`)), DRAIN_DEADLINE_MS);
  timer.unref();
  return {
    add(more) {
      count += more;
      if (count > expected) reject(new Error(`${count} changes arrived, ${expected} were written: a duplicate`));
      else if (count === expected) {
        clearTimeout(timer);
        resolve();
      }
    },
    done,
    get count() {
      return count;
    },
  };
}
