/**
 * The PostgreSQL half of the store suite: Busbar's PostgreSQL store against
 * `pg` with prepared statements, on fresh schemas (Busbar's, and one made by
 * the same migration for the raw side) that are dropped afterwards.
 * `BUSBAR_BENCH_POSTGRES_URL` picks the database.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { PostgresStore } from '../src/store/postgres/index.ts';
import { migrate, schemaNames } from '../src/store/postgres/schema.ts';
import { runScenario, type Scenario, type Score } from './harness.ts';
import { newEvent } from './store.bench.ts';

const DATABASE_URL = process.env.BUSBAR_BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const PAGE = 1000;
let sink = 0;

interface Database {
  readonly pool: pg.Pool;
  readonly store: PostgresStore;
  /** Busbar's events table, and the raw side's twin (same DDL, another schema). */
  readonly events: string;
  readonly rawEvents: string;
}

/** Prepared multi-row `INSERT … VALUES ($1…$7), …` of `rows` rows into `table`. */
function insertValues(table: string, rows: number): pg.QueryConfig {
  const tuples = Array.from({ length: rows }, (_, row) => `(${Array.from({ length: 7 }, (_, column) => `$${row * 7 + column + 1}`).join(', ')})`);
  return {
    name: `bench-insert-${rows}`,
    text: `INSERT INTO ${table} (position, id, type, stream, stream_version, recipients, event) VALUES ${tuples.join(', ')}`,
  };
}

function batchAppend(database: Database, ops: number): Scenario {
  let version = 0;
  let rawPosition = 0;
  let rawVersion = 0;
  return {
    name: 'append 1000 events to a stream, PostgreSQL',
    baseline: 'raw pg, 1000-row INSERT in one transaction',
    ops,
    competitors: [
      {
        name: 'raw pg, 1000-row INSERT in one transaction',
        async run(n) {
          for (let done = 0; done < n; done += PAGE) {
            const rows = Math.min(PAGE, n - done);
            const values: unknown[] = [];
            for (let i = 0; i < rows; i++) {
              const event = newEvent();
              values.push(++rawPosition, event.id, event.type, 'bench-stream', ++rawVersion, null, JSON.stringify(event));
            }
            const client = await database.pool.connect();
            try {
              await client.query('BEGIN');
              await client.query({ ...insertValues(database.rawEvents, rows), values });
              await client.query('COMMIT');
            } finally {
              client.release();
            }
          }
        },
      },
      {
        name: 'busbar appendToStream (expected version)',
        async run(n) {
          for (let done = 0; done < n; done += PAGE) {
            const events = Array.from({ length: Math.min(PAGE, n - done) }, newEvent);
            ({ version } = await database.store.appendToStream('bench-stream', events, { expectedVersion: version }));
          }
        },
      },
    ],
  };
}

/** Both sides page through Busbar's events table, filled with `ops` events by the store. */
async function readAll(database: Database, ops: number): Promise<Scenario> {
  const { pool, store } = database;
  const head = await store.head();
  for (let done = 0; done < ops; done += PAGE) await store.append(Array.from({ length: Math.min(PAGE, ops - done) }, newEvent));
  await pool.query(`VACUUM ANALYZE ${database.events}`);
  const select: pg.QueryConfig = {
    name: 'bench-read-page',
    text: `SELECT position, type, stream, stream_version, recipients, event, recorded_at
           FROM ${database.events} WHERE position > $1 ORDER BY position LIMIT $2`,
  };
  return {
    name: `read all ${ops.toLocaleString('en-US')} events, pages of 1000, JSON parsed, PostgreSQL`,
    baseline: 'raw pg SELECT + JSON.parse',
    ops,
    competitors: [
      {
        name: 'raw pg SELECT + JSON.parse',
        async run() {
          let after = head;
          for (;;) {
            const { rows } = await pool.query<{ position: string; event: string }>({ ...select, values: [after, PAGE] });
            if (rows.length === 0) break;
            for (const row of rows) sink += (JSON.parse(row.event) as { data: { total: number } }).data.total;
            after = Number(rows[rows.length - 1]!.position);
          }
        },
      },
      {
        name: 'busbar readAll',
        async run() {
          let after = head;
          for (;;) {
            const page = await store.readAll({ after, limit: PAGE });
            if (page.events.length === 0) break;
            for (const logged of page.events) sink += (logged.event.data as { total: number }).total;
            after = page.last;
          }
        },
      },
    ],
  };
}

/** Runs the PostgreSQL scenarios; a note instead of scores when the store or the server is not there. */
export async function scores(rounds: number, scale: number, notes: string[]): Promise<Score[]> {
  const schema = `busbar_bench_${randomBytes(4).toString('hex')}`;
  const rawSchema = `${schema}_raw`;
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
  pool.on('error', () => {});
  let store: PostgresStore | undefined;
  try {
    const { createPostgresStore } = await import('../src/store/postgres/index.ts');
    store = await createPostgresStore({ connectionString: DATABASE_URL, schema });
    const rawNames = schemaNames(rawSchema, pg.escapeIdentifier);
    const client = await pool.connect();
    try {
      await migrate(client, rawNames);
    } finally {
      client.release();
    }
    const { rows } = await pool.query<{ server_version: string }>('SHOW server_version');
    notes.push(`PostgreSQL ${rows[0]!.server_version} at ${new URL(DATABASE_URL).host}, schemas ${schema} and ${rawSchema} (dropped after)`);
    const database: Database = {
      pool,
      store,
      events: schemaNames(schema, pg.escapeIdentifier).events,
      rawEvents: rawNames.events,
    };
    const result: Score[] = [];
    result.push(...(await runScenario(batchAppend(database, Math.round(20_000 * scale)), rounds)));
    result.push(...(await runScenario(await readAll(database, Math.round(50_000 * scale)), rounds)));
    if (sink === -1) console.log(sink);
    return result;
  } catch (error) {
    notes.push(`PostgreSQL scenarios not run: ${(error as Error).message}`);
    return [];
  } finally {
    await store?.close().catch(() => {});
    for (const name of [schema, rawSchema]) await pool.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(name)} CASCADE`).catch(() => {});
    await pool.end();
  }
}
