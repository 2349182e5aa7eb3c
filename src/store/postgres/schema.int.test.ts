import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import pg from 'pg';
import { BusbarError } from '../../core/errors.ts';
import { createPostgresStore, SCHEMA_VERSION } from './index.ts';
import { dropSchema, freshSchemaName, TEST_DATABASE_URL, testEvent, testPool } from './test-database.fixture.ts';

async function admin(t: TestContext, schema: string): Promise<pg.Pool> {
  const pool = await testPool();
  t.after(async () => {
    await dropSchema(pool, schema);
    await pool.end();
  });
  return pool;
}

const open = (schema: string) => createPostgresStore({ connectionString: TEST_DATABASE_URL, schema });

async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<BusbarError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof BusbarError, `expected a BusbarError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return error;
  }
  assert.fail(`expected ${code}, but it succeeded`);
}

test('creates its tables in the schema and records the schema version', async (t) => {
  const schema = freshSchemaName();
  const pool = await admin(t, schema);
  const store = await open(schema);
  t.after(() => store.close());
  const { rows } = await pool.query<{ table_name: string }>(
    'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name',
    [schema],
  );
  assert.deepEqual(
    rows.map((row) => row.table_name),
    ['checkpoints', 'dead_letters', 'events', 'head', 'migrations', 'processed', 'streams'],
  );
  const versions = await pool.query(`SELECT version FROM ${pg.escapeIdentifier(schema)}.migrations`);
  assert.deepEqual(versions.rows, [{ version: SCHEMA_VERSION }]);
});

test('stores opening a new schema at once, as processes starting together, migrate it once and all work', async (t) => {
  const schema = freshSchemaName();
  const pool = await admin(t, schema);
  const stores = await Promise.all([open(schema), open(schema), open(schema)]);
  t.after(() => Promise.all(stores.map((store) => store.close())));
  const versions = await pool.query(`SELECT version FROM ${pg.escapeIdentifier(schema)}.migrations`);
  assert.equal(versions.rowCount, SCHEMA_VERSION);
  const positions = await Promise.all(stores.map((store) => store.append([testEvent()])));
  assert.deepEqual(positions.flat().sort(), [1, 2, 3]);
});

test('reopening an up-to-date schema changes nothing', async (t) => {
  const schema = freshSchemaName();
  const pool = await admin(t, schema);
  const first = await open(schema);
  await first.append([testEvent()]);
  await first.close();
  const before = await pool.query(`SELECT version, applied_at FROM ${pg.escapeIdentifier(schema)}.migrations`);
  const second = await open(schema);
  t.after(() => second.close());
  const afterwards = await pool.query(`SELECT version, applied_at FROM ${pg.escapeIdentifier(schema)}.migrations`);
  assert.deepEqual(afterwards.rows, before.rows);
  assert.equal(await second.head(), 1);
});

test('refuses a schema newer than this code with BUSBAR_ERR_STORE_SCHEMA naming both versions', async (t) => {
  const schema = freshSchemaName();
  const pool = await admin(t, schema);
  await (await open(schema)).close();
  await pool.query(`INSERT INTO ${pg.escapeIdentifier(schema)}.migrations (version) VALUES (99)`);
  const error = await rejectsWithCode(open(schema), 'BUSBAR_ERR_STORE_SCHEMA');
  assert.match(error.message, /version 99/);
  assert.match(error.message, new RegExp(`version ${SCHEMA_VERSION}\\b`));
  assert.equal(error.status, 500);
});

test('keeps a hostile schema name quoted everywhere', async (t) => {
  const schema = `weird"; drop schema public; --${freshSchemaName('')}`;
  const pool = await admin(t, schema);
  const store = await open(schema);
  t.after(() => store.close());
  const reader = await open(schema);
  t.after(() => reader.close());
  const waiting = reader.waitForAppend(0, AbortSignal.timeout(5000));
  assert.deepEqual(await store.append([testEvent()]), [1]);
  await waiting;
  assert.deepEqual((await store.appendToStream('s', [testEvent()], { expectedVersion: 'no_stream' })).positions, [2]);
  await store.setStreamMetadata('s', { maxCount: 1 });
  await store.saveCheckpoint('c', 2);
  assert.equal((await reader.readAll()).events.length, 2);
  const { rows } = await pool.query('SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = $1', [schema]);
  assert.equal(rows[0].n, 7);
  const publicSchema = await pool.query("SELECT 1 FROM pg_namespace WHERE nspname = 'public'");
  assert.equal(publicSchema.rowCount, 1, 'public is still there');
});

test('refuses a schema name PostgreSQL would truncate', async () => {
  await rejectsWithCode(open('s'.repeat(64)), 'BUSBAR_ERR_INVALID_ARGUMENT');
  await rejectsWithCode(open(''), 'BUSBAR_ERR_INVALID_ARGUMENT');
});
