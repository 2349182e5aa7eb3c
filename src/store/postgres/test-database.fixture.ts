/**
 * The harness the PostgreSQL integration tests share: the test database, a
 * fresh schema per test (so test files run in parallel on one database) and
 * a clear failure when PostgreSQL is down. These tests never skip.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { buildEvent } from '../../core/event.ts';
import type { BusbarEvent } from '../../core/event.ts';
import { createPostgresStore, type PostgresStore, type PostgresStoreOptions } from './index.ts';

export const TEST_DATABASE_URL = process.env.BUSBAR_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A pool on the test database; fails with a message that says what to start. */
export async function testPool(max = 10): Promise<pg.Pool> {
  const pool = new pg.Pool({ connectionString: TEST_DATABASE_URL, max });
  pool.on('error', () => {});
  try {
    await pool.query('SELECT 1');
  } catch (error) {
    await pool.end().catch(() => {});
    throw new Error(
      `PostgreSQL is not reachable at ${TEST_DATABASE_URL} (${(error as Error).message}). ` +
        'Start it (see /work/shared/services.md) or point BUSBAR_TEST_POSTGRES_URL at one; these tests do not skip.',
      { cause: error },
    );
  }
  return pool;
}

export function freshSchemaName(prefix = 'busbar_test'): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

export async function dropSchema(pool: pg.Pool, schema: string): Promise<void> {
  await pool.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
}

export interface TestStore {
  readonly store: PostgresStore;
  readonly schema: string;
  /** An independent pool on the same database, for the test's own SQL. */
  readonly admin: pg.Pool;
  /** Another store on the same schema, as a second process would open it. */
  reopen(options?: Omit<PostgresStoreOptions, 'schema'>): Promise<PostgresStore>;
  /** Closes every store it opened, drops the schema and ends the admin pool. */
  cleanup(): Promise<void>;
}

/** A store on a fresh schema of the test database. */
export async function openTestStore(options: Omit<PostgresStoreOptions, 'schema'> & { schema?: string } = {}): Promise<TestStore> {
  const admin = await testPool();
  const schema = options.schema ?? freshSchemaName();
  const opened: PostgresStore[] = [];
  const open = async (extra: PostgresStoreOptions): Promise<PostgresStore> => {
    const store = await createPostgresStore({ connectionString: TEST_DATABASE_URL, ...extra, schema });
    opened.push(store);
    return store;
  };
  const store = await open(options);
  return {
    store,
    schema,
    admin,
    reopen: (extra = {}) => open(extra),
    async cleanup() {
      await Promise.allSettled(opened.map((each) => each.close()));
      await dropSchema(admin, schema);
      await admin.end();
    },
  };
}

let counter = 0;

/** A fresh event for `type` with a readable, unique id. */
export function testEvent(type = 'test.happened', data: unknown = {}, id?: string): BusbarEvent {
  return buildEvent(type, data, { id: id ?? `event-${process.pid}-${++counter}-${randomBytes(3).toString('hex')}` }, 'busbar-test');
}
