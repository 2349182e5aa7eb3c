/**
 * Parts 3 and 4: what capture costs the writers, and how far behind it
 * falls. pgbench runs 8 writers doing single-row INSERT commits flat out,
 * each variant on its own table, with nothing attached, with pg_recvlogical
 * attached, with Busbar capturing (replication mode, trigger mode) into a
 * durable bus on the SQLite store, and with the seed's design. Only the
 * variant's own reader is attached while it runs, and slots are moved to the
 * end of the WAL first, so no reader decodes another variant's writes.
 *
 * Throughput moves with whatever else the shared machine runs, so each run
 * also reports CPU per committed row: of the whole PostgreSQL server (the
 * writers' backends, the walsender, a trigger reader's backend) and of the
 * reader, until it delivered every row.
 *
 * For Busbar, every change's lag (its commit time to its publish resolving,
 * i.e. committed in the bus's store) is recorded until the last one
 * arrives: that is the drain lag at the highest sustained write rate.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ChangeData } from '../src/cdc/change.ts';
import type { CdcBus } from '../src/cdc/change-sink.ts';
import { createPostgresCdc } from '../src/cdc/postgres-cdc.ts';
import type { BusbarEvent } from '../src/core/event.ts';
import { createBus } from '../src/index.ts';
import { createSqliteStore } from '../src/store/sqlite/index.ts';
import {
  advanceSlot,
  type BenchDatabase,
  CpuWatch,
  createSlot,
  ownCpuSeconds,
  pgbench,
  recvlogicalAttached,
  rowCount,
  serverCpuSeconds,
  sleep,
  until,
  walsenderOf,
} from './cdc-database.ts';
import { microsOf, nowMicros } from './cdc-clock.ts';
import { installSeedTrigger, listenReader } from './cdc-raw-readers.ts';
import { runRounds, type Samples, type Variant } from './cdc-rounds.ts';

export const NO_CAPTURE = 'no capture';
export const RECVLOGICAL_ATTACHED = 'pg_recvlogical attached';
export const BUSBAR_REPLICATION = 'busbar replication mode → SQLite-store bus';
export const BUSBAR_TRIGGER = 'busbar trigger mode → SQLite-store bus';
export const SEED = 'seed: trigger pg_notify(row_to_json) + LISTEN';

const WRITERS = 8;
const RECVLOGICAL_SLOT = 'writers_recvlogical';
const BUSBAR_SLOT = 'writers_busbar';
const SEED_CHANNEL = 'bench_seed';
/** Time for the postmaster to reap the writers' backends, so their CPU shows in its cutime. */
const REAPED_MS = 100;
/** How long capture may take to deliver what the writers committed, once they stop. */
const DRAIN_DEADLINE_MS = 120_000;
/** The most lags recorded per run (bounded memory; at 30k rows/s for 10 s that is every one). */
const LAG_CAPACITY = 400_000;

const TABLES = {
  [NO_CAPTURE]: 'writers_plain',
  [RECVLOGICAL_ATTACHED]: 'writers_replicated',
  [BUSBAR_REPLICATION]: 'writers_replicated',
  [BUSBAR_TRIGGER]: 'writers_triggered',
  [SEED]: 'writers_seed',
} as const;

/** The writers' tables (`writers_replicated` must be in the publication) and the seed's trigger. */
export async function createWritersSchema(database: BenchDatabase): Promise<void> {
  const columns = `id bigserial PRIMARY KEY, name text NOT NULL, amount numeric, at timestamptz NOT NULL DEFAULT now()`;
  for (const table of new Set(Object.values(TABLES))) await database.admin.query(`CREATE TABLE ${table} (${columns})`);
  await installSeedTrigger(database.admin, 'writers_seed', SEED_CHANNEL);
  await createSlot(database, RECVLOGICAL_SLOT);
  await createSlot(database, BUSBAR_SLOT);
}

/** Each run's tps, CPU (per committed row, and in cores: seconds per second), drain time and lags in ms. */
export async function writers(
  database: BenchDatabase,
  options: { rounds: number; warmup: number; seconds: number; directory: string },
): Promise<Samples> {
  const run = async (variant: keyof typeof TABLES, attach: () => Promise<Attached>): Promise<Record<string, number>> => {
    const table = TABLES[variant];
    const attached = await attach();
    try {
      await attached.ready;
      const arrived = attached.arrived;
      if (arrived !== undefined) {
        // One row first, so a session's one-time work (type look-ups) is not counted as lag.
        await database.admin.query(`INSERT INTO ${table} (name, amount) VALUES ('warm-up', 0)`);
        await until(() => arrived() > 0, `the warm-up row to reach the reader of ${table}`);
      }
      const arrivedBefore = arrived?.() ?? 0;
      const before = await rowCount(database, table);
      const watch = new CpuWatch();
      for (const [name, pid] of Object.entries(attached.pids ?? {})) watch.track(name, pid, false);
      const cpuBefore = ownCpuSeconds();
      const serverBefore = serverCpuSeconds(database.postgres.pid);
      const started = Date.now();
      attached.lags?.start();
      const { tps } = await pgbench(database, `INSERT INTO ${table} (name, amount) VALUES ('writer ' || :client_id, random() * 1000);`, {
        clients: WRITERS,
        threads: 2,
        seconds: options.seconds,
        file: join(options.directory, `${table}.sql`),
      });
      const ended = Date.now();
      const written = (await rowCount(database, table)) - before;
      let drainMs = Number.NaN;
      if (arrived !== undefined) {
        const delivered = () => arrived() - arrivedBefore;
        await until(() => delivered() >= written, `${variant}: ${written} changes to arrive (${delivered()} did)`, DRAIN_DEADLINE_MS);
        if (delivered() !== written) throw new Error(`${variant}: ${delivered()} changes arrived, ${written} were written`);
        drainMs = Date.now() - ended;
      }
      // CPU until the capture delivered everything: the drain is part of the cost.
      const cpu = watch.stop();
      const readerCpu = ownCpuSeconds() - cpuBefore + (cpu.client ?? 0);
      await sleep(REAPED_MS);
      const serverCpu = serverCpuSeconds(database.postgres.pid) - serverBefore;
      const seconds = (ended - started) / 1000;
      const measures: Record<string, number> = {
        tps,
        drainMs,
        readerCores: readerCpu / seconds,
        walsenderCores: (cpu.walsender ?? Number.NaN) / seconds,
        // CPU per committed row: steadier than throughput on a shared machine.
        serverUsPerRow: (serverCpu * 1e6) / written,
        readerUsPerRow: (readerCpu * 1e6) / written,
        machineUsPerRow: ((serverCpu + readerCpu) * 1e6) / written,
      };
      if (attached.lags !== undefined) Object.assign(measures, attached.lags.summary());
      return measures;
    } finally {
      await attached.stop();
    }
  };

  const busbar = (mode: 'replication' | 'trigger') => async (): Promise<Attached> => {
    if (mode === 'replication') await advanceSlot(database, BUSBAR_SLOT);
    const directory = mkdtempSync(join(options.directory, `writers-${mode}-`));
    const store = createSqliteStore({ path: join(directory, 'bus.db'), synchronous: 'full' });
    const bus = createBus({ store });
    const lags = new Lags();
    let connected!: () => void;
    const ready = new Promise<void>((resolve) => (connected = resolve));
    const cdc = createPostgresCdc({
      connectionString: database.url,
      mode,
      ...(mode === 'replication' ? { slotName: BUSBAR_SLOT, publicationName: 'bench' } : { tables: ['writers_triggered'] }),
      bus: lagBus(bus, lags),
      handlers: [{ onConnect: () => connected() }],
      onWarning: () => {},
    });
    cdc.start();
    return {
      ready,
      lags,
      arrived: () => lags.count,
      async stop() {
        await cdc.close();
        await bus.close();
        await store.close();
        rmSync(directory, { recursive: true, force: true });
      },
    };
  };

  const variants: Variant[] = [
    { name: NO_CAPTURE, run: () => run(NO_CAPTURE, async () => ({ ready: Promise.resolve(), stop: async () => {} })) },
    {
      name: RECVLOGICAL_ATTACHED,
      run: () =>
        run(RECVLOGICAL_ATTACHED, async () => {
          await advanceSlot(database, RECVLOGICAL_SLOT);
          const reader = recvlogicalAttached(database, RECVLOGICAL_SLOT);
          const walsender = await walsenderOf(database, RECVLOGICAL_SLOT);
          return { ready: Promise.resolve(), pids: { client: reader.pid, walsender }, stop: () => reader.stop() };
        }),
    },
    {
      name: BUSBAR_REPLICATION,
      run: () =>
        run(BUSBAR_REPLICATION, async () => {
          const attached = await busbar('replication')();
          await attached.ready;
          return { ...attached, pids: { walsender: await walsenderOf(database, BUSBAR_SLOT) } };
        }),
    },
    { name: BUSBAR_TRIGGER, run: () => run(BUSBAR_TRIGGER, busbar('trigger')) },
    {
      name: SEED,
      run: () =>
        run(SEED, async () => {
          let heard = 0;
          const reader = listenReader(database.url, SEED_CHANNEL, () => heard++);
          return { ready: reader.started, arrived: () => heard, stop: () => reader.stop() };
        }),
    },
  ];
  return runRounds(variants, { rounds: options.rounds, warmup: options.warmup });
}

interface Attached {
  /** Resolves once the reader is streaming. */
  readonly ready: Promise<void>;
  /** Processes whose CPU is the capture's (the reader when it is not this process, the walsender). */
  readonly pids?: Record<string, number | undefined>;
  /** Changes the reader has delivered so far. */
  readonly arrived?: () => number;
  readonly lags?: Lags;
  stop(): Promise<void>;
}

/**
 * Each change's lag, in µs: from its commit to its publish resolving, for
 * every change the writers committed (the warm-up row is not recorded).
 */
class Lags {
  private readonly values = new Float64Array(LAG_CAPACITY);
  private size = 0;
  private arrivedTotal = 0;
  private recording = false;

  get count(): number {
    return this.arrivedTotal;
  }

  start(): void {
    this.recording = true;
  }

  record(events: readonly BusbarEvent[]): void {
    this.arrivedTotal += events.length;
    if (!this.recording) return;
    const now = nowMicros();
    for (const event of events) {
      if (this.size === LAG_CAPACITY) return;
      this.values[this.size++] = now - microsOf((event.data as ChangeData).timestamp);
    }
  }

  /** p50, p99 and max lag in ms of what arrived while recording; stops recording. */
  summary(): Record<string, number> {
    this.recording = false;
    const sorted = this.values.slice(0, this.size).sort();
    if (sorted.length === 0) return { lagP99Ms: Number.NaN, lagMaxMs: Number.NaN };
    return {
      lagP50Ms: sorted[Math.floor(0.5 * sorted.length)]! / 1000,
      lagP99Ms: sorted[Math.floor(0.99 * sorted.length)]! / 1000,
      lagMaxMs: sorted[sorted.length - 1]! / 1000,
      lagSamples: sorted.length,
    };
  }
}

/** The bus, recording the lag of each change once its publish resolved. */
function lagBus(bus: ReturnType<typeof createBus>, lags: Lags): CdcBus {
  return {
    publishEvent: (event) => bus.publishEvent(event),
    async publishEvents(events) {
      const receipts = await bus.publishEvents(events);
      lags.record(events as readonly BusbarEvent[]);
      return receipts;
    },
  };
}

