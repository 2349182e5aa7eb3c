/**
 * The durable stores against their raw engines, in the same run, on the same
 * schema: Busbar's SQLite store against `node:sqlite` with prepared
 * statements, then (store-postgres.bench.ts) the PostgreSQL store against
 * `pg`. Both sides store the same rows, built from the same events
 * (`buildEvent`, serialized with `JSON.stringify`), with fsync on.
 */
import { mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { buildEvent } from '../src/core/event.ts';
import { createBus } from '../src/index.ts';
import { createSqliteStore, type SqliteStore } from '../src/store/sqlite/index.ts';
import { migrate } from '../src/store/sqlite/schema.ts';
import { type Competitor, printTable, runScenario, type Scenario, type Score } from './harness.ts';

const payload = { id: 'o-1', total: 42 };
const TOPIC = 'bench.tick';
const PAGE = 1000;
let sink = 0;

/** Statfs magic numbers of the filesystems worth naming (fsync on tmpfs is free). */
const FILESYSTEMS: Record<number, string> = {
  0x01021994: 'tmpfs',
  0xef53: 'ext4',
  0x58465342: 'xfs',
  0x9123683e: 'btrfs',
  0x794c7630: 'overlayfs',
};

export function filesystemOf(path: string): string {
  const type = statfsSync(path).type;
  return FILESYSTEMS[type] ?? `0x${type.toString(16)}`;
}

/**
 * Where the database files go: `BUSBAR_BENCH_DIR`, else the OS temp dir
 * unless it is a tmpfs (where fsync costs nothing), then `/var/tmp`.
 */
function benchDirectory(): string {
  const chosen = process.env.BUSBAR_BENCH_DIR ?? (filesystemOf(tmpdir()) === 'tmpfs' ? '/var/tmp' : tmpdir());
  return mkdtempSync(join(chosen, 'busbar-bench-'));
}

export function newEvent() {
  return buildEvent(TOPIC, payload, undefined, 'bench');
}

/** A database with Busbar's schema (its own migration), opened as the store opens it. */
function rawDatabase(path: string): DatabaseSync {
  const database = new DatabaseSync(path);
  database.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;');
  migrate(database, path);
  return database;
}

/** Raw inserts of `rowsPerTransaction` rows per transaction, positions and versions kept by hand. */
function rawInserts(name: string, path: string, rowsPerTransaction: number, stream?: string): Competitor {
  let database: DatabaseSync;
  let insert: ReturnType<DatabaseSync['prepare']>;
  let position = 0;
  let version = 0;
  return {
    name,
    setup() {
      database = rawDatabase(path);
      insert = database.prepare(
        `INSERT INTO busbar_events (position, id, type, stream, stream_version, recipients, event, recorded_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      );
    },
    run(ops) {
      for (let done = 0; done < ops; done += rowsPerTransaction) {
        const rows = Math.min(rowsPerTransaction, ops - done);
        database.exec('BEGIN IMMEDIATE');
        const now = Date.now();
        for (let i = 0; i < rows; i++) {
          const event = newEvent();
          insert.run(++position, event.id, event.type, stream ?? null, stream === undefined ? null : ++version, null, JSON.stringify(event), now);
        }
        database.exec('COMMIT');
      }
    },
    teardown: () => database.close(),
  };
}

/** `bus.publish` awaited by `publishers` concurrent loops, on a bus with the SQLite store. */
function busbarPublishers(name: string, path: string, publishers: number, notes: string[]): Competitor {
  let store: SqliteStore;
  let bus: ReturnType<typeof createBus>;
  let published = 0;
  return {
    name,
    async setup() {
      store = createSqliteStore({ path, synchronous: 'full' });
      bus = createBus({ store });
      await bus.ready;
    },
    async run(ops) {
      const loop = async (first: number) => {
        for (let i = first; i < ops; i += publishers) await bus.publish(TOPIC, payload);
      };
      await Promise.all(Array.from({ length: publishers }, (_, first) => loop(first)));
      published += ops;
    },
    async teardown() {
      notes.push(`${name}: ${(published / store.commits).toFixed(1)} events per commit (fsync)`);
      await bus.close();
      await store.close();
    },
  };
}

function durablePublish(directory: string, ops: number, notes: string[]): Scenario[] {
  const file = (name: string) => join(directory, `${name}.db`);
  return [
    {
      name: 'durable publish, 16 concurrent publishers, SQLite fsync on',
      baseline: 'raw SQLite, 100-row transactions',
      ops,
      competitors: [
        rawInserts('raw SQLite, 100-row transactions', file('raw-100'), 100),
        rawInserts('raw SQLite, 16-row transactions', file('raw-16'), 16),
        busbarPublishers('busbar, 16 publishers awaiting publish', file('busbar-16'), 16, notes),
      ],
    },
    {
      // A tenth of the operations: every one of them is an fsync.
      name: 'durable publish, 1 publisher, SQLite fsync on',
      baseline: 'raw SQLite, 1 row per transaction',
      ops: Math.round(ops / 10),
      competitors: [
        rawInserts('raw SQLite, 1 row per transaction', file('raw-1'), 1),
        busbarPublishers('busbar, 1 publisher awaiting publish', file('busbar-1'), 1, notes),
      ],
    },
  ];
}

function batchAppend(directory: string, ops: number): Scenario {
  let store: SqliteStore;
  let version = 0;
  return {
    name: 'append 1000 events to a stream, SQLite fsync on',
    baseline: 'raw SQLite, 1000-row transaction',
    ops,
    competitors: [
      rawInserts('raw SQLite, 1000-row transaction', join(directory, 'raw-batch.db'), PAGE, 'bench-stream'),
      {
        name: 'busbar appendToStream (expected version)',
        setup: () => void (store = createSqliteStore({ path: join(directory, 'busbar-batch.db') })),
        async run(n) {
          for (let done = 0; done < n; done += PAGE) {
            const events = Array.from({ length: Math.min(PAGE, n - done) }, newEvent);
            ({ version } = await store.appendToStream('bench-stream', events, { expectedVersion: version }));
          }
        },
        teardown: () => store.close(),
      },
    ],
  };
}

/** Both sides page through the same file, filled with `ops` events by the store. */
async function readAll(directory: string, ops: number): Promise<Scenario> {
  const path = join(directory, 'read.db');
  const store = createSqliteStore({ path });
  for (let done = 0; done < ops; done += PAGE) await store.append(Array.from({ length: Math.min(PAGE, ops - done) }, newEvent));
  const database = rawDatabase(path);
  database.exec('PRAGMA wal_checkpoint(TRUNCATE)');
  const select = database.prepare(
    `SELECT position, type, stream, stream_version, recipients, event, recorded_at
     FROM busbar_events WHERE position > ? ORDER BY position LIMIT ?`,
  );
  select.setReturnArrays(true);
  return {
    name: `read all ${ops.toLocaleString('en-US')} events, pages of 1000, JSON parsed, SQLite`,
    baseline: 'raw SQLite SELECT + JSON.parse',
    ops,
    competitors: [
      {
        name: 'raw SQLite SELECT + JSON.parse',
        run() {
          let after = 0;
          for (;;) {
            const rows = select.all(after, PAGE) as unknown as [number, string, null, null, null, string, number][];
            if (rows.length === 0) break;
            for (const row of rows) sink += (JSON.parse(row[5]) as { data: typeof payload }).data.total;
            after = rows[rows.length - 1]![0];
          }
        },
        teardown: () => database.close(),
      },
      {
        name: 'busbar readAll',
        async run() {
          let after = 0;
          for (;;) {
            const page = await store.readAll({ after, limit: PAGE });
            if (page.events.length === 0) break;
            for (const logged of page.events) sink += (logged.event.data as typeof payload).total;
            after = page.last;
          }
        },
        teardown: () => store.close(),
      },
    ],
  };
}

export async function run(rounds: number, scale: number): Promise<void> {
  const directory = benchDirectory();
  const notes = [`SQLite files in ${directory} (${filesystemOf(directory)}), synchronous = FULL, journal_mode = WAL`];
  const scores: Score[] = [];
  try {
    // Built one at a time: the read scenario fills its file first.
    const scenarios: (() => Scenario | Promise<Scenario>)[] = [
      ...durablePublish(directory, Math.round(20_000 * scale), notes).map((scenario) => () => scenario),
      () => batchAppend(directory, Math.round(20_000 * scale)),
      () => readAll(directory, Math.round(50_000 * scale)),
    ];
    for (const scenario of scenarios) scores.push(...(await runScenario(await scenario(), rounds)));
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
  const postgres = await import('./store-postgres.bench.ts');
  scores.push(...(await postgres.scores(rounds, scale, notes)));
  printTable(scores);
  console.log('');
  for (const note of notes) console.log(`- ${note}`);
  if (sink === -1) console.log(sink); // keeps the reads observable
}
