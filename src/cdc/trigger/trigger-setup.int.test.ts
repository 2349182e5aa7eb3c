import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { BusbarError } from '../../core/errors.ts';
import type { CaptureSource } from '../capture-source.ts';
import { createTriggerSource, type TriggerSourceOptions } from './index.ts';
import { createScratchDatabase, idsOf, RecordingSink, type ScratchDatabase, startStream } from './trigger-test.fixture.ts';

let scratch: ScratchDatabase;
const sources: CaptureSource[] = [];
const q = pg.escapeIdentifier;

before(async () => {
  scratch = await createScratchDatabase();
  await scratch.pool.query('CREATE TABLE public.canary (id int)');
});

after(async () => {
  await Promise.allSettled(sources.map((source) => source.close()));
  await scratch?.cleanup();
});

/** A source on the scratch database with its own Busbar schema. */
function sourceFor(options: Partial<TriggerSourceOptions> = {}): CaptureSource {
  const source = createTriggerSource({
    connectionString: scratch.url,
    schema: `busbar_${randomBytes(4).toString('hex')}`,
    pollInterval: 200,
    onWarning: () => {},
    ...options,
  });
  sources.push(source);
  return source;
}

async function canaryAlive(): Promise<boolean> {
  const { rows } = await scratch.pool.query("SELECT to_regclass('public.canary') IS NOT NULL AS alive");
  return rows[0].alive;
}

async function captureTriggers(): Promise<number> {
  const { rows } = await scratch.pool.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_trigger WHERE tgname LIKE 'busbar\\_cdc\\_%' AND NOT tgisinternal",
  );
  return rows[0]!.n;
}

describe('trigger mode setup is safe with any name and needs only ordinary rights', () => {
  test('hostile schema and table names work, reach events as they are, and inject nothing', async () => {
    const schema = 'x"; DROP TABLE public.canary; --';
    const names = ['Mixed Case', 'ünïcødé', 't"; DROP TABLE public.canary; --'];
    await scratch.pool.query(`CREATE SCHEMA ${q(schema)}`);
    for (const name of names) await scratch.pool.query(`CREATE TABLE ${q(schema)}.${q(name)} (id int PRIMARY KEY, v text)`);
    const source = sourceFor({ schema: 'busbar"; DROP TABLE public.canary; --' });
    const tables = names.map((name) => ({ schema, name }));
    await source.ensureFor(tables, { replicaIdentityFull: new Map() });
    await source.ensureFor(tables, { replicaIdentityFull: new Map() }); // idempotent
    const sink = new RecordingSink();
    const stream = startStream(source, sink);
    await stream.connected;
    for (const [i, name] of names.entries()) {
      await scratch.pool.query(`INSERT INTO ${q(schema)}.${q(name)} VALUES ($1, 'a')`, [i]);
      await scratch.pool.query(`UPDATE ${q(schema)}.${q(name)} SET v = 'b'`);
      await scratch.pool.query(`TRUNCATE ${q(schema)}.${q(name)}`);
    }
    await sink.until(() => sink.changes.length >= 9, 'three changes on each table');
    await stream.stop();
    assert.deepEqual(
      sink.changes.map((change) => [change.schema, change.table, change.action]),
      names.flatMap((name) => [
        [schema, name, 'INSERT'],
        [schema, name, 'UPDATE'],
        [schema, name, 'TRUNCATE'],
      ]),
      'each change once (installing twice added nothing), with the names as they are',
    );
    for (const table of tables) await source.removeFor(table);
    assert.equal(await captureTriggers(), 0, 'removeFor dropped every trigger');
    await source.drop();
    assert.equal(await canaryAlive(), true, 'nothing was injected');
  });

  test("ensureForAll covers every ordinary and partitioned table once, never a Busbar schema's own tables", async () => {
    await scratch.pool.query(`
      CREATE SCHEMA s1; CREATE SCHEMA s2;
      CREATE TABLE s1.t1 (id int PRIMARY KEY);
      CREATE TABLE s2.t2 (id int PRIMARY KEY);
      CREATE TABLE s1.part (id int PRIMARY KEY) PARTITION BY RANGE (id);
      CREATE TABLE s1.part_low PARTITION OF s1.part FOR VALUES FROM (0) TO (100);
      CREATE TABLE s1.part_high PARTITION OF s1.part FOR VALUES FROM (100) TO (200);
    `);
    const other = sourceFor(); // another Busbar installation in the same database
    await other.ensureForAll();
    const source = sourceFor();
    await source.ensureForAll();
    await source.ensureForAll(); // idempotent
    const sink = new RecordingSink();
    const stream = startStream(source, sink);
    await stream.connected;
    await scratch.pool.query('INSERT INTO s1.t1 VALUES (1); INSERT INTO s2.t2 VALUES (2); INSERT INTO s1.part VALUES (3), (150)');
    await sink.until(() => sink.changes.length >= 4, 'the four rows');
    await scratch.pool.query('CREATE TABLE s2.later (id int PRIMARY KEY); INSERT INTO s2.later VALUES (4)');
    await scratch.pool.query('INSERT INTO s1.t1 VALUES (5)');
    await sink.until(() => idsOf(sink.changes).includes(5), 'the row after the new table');
    assert.deepEqual(
      sink.changes.map((change) => `${change.schema}.${change.table}:${String(change.id)}`),
      ['s1.t1:1', 's2.t2:2', 's1.part_low:3', 's1.part_high:150', 's1.t1:5'],
      "partitions once each, under their own name; no other installation's change tables; not yet the new table",
    );
    await source.ensureForAll(); // the documented re-run after creating tables
    await scratch.pool.query('INSERT INTO s2.later VALUES (6)');
    await sink.until(() => idsOf(sink.changes).includes(6), 'the new table after the re-run');
    await stream.stop();
    await source.drop();
    await other.drop();
    assert.equal(await captureTriggers(), 0, 'drop removed the triggers from every table');
  });

  test('drop removes the triggers, tables, functions and schema, and leaves captured tables untouched', async () => {
    const schemaName = `busbar_drop_${randomBytes(3).toString('hex')}`;
    await scratch.pool.query('CREATE TABLE public.kept (id int PRIMARY KEY); INSERT INTO public.kept VALUES (1)');
    const source = sourceFor({ schema: schemaName });
    await source.ensureFor([{ schema: 'public', name: 'kept' }], { replicaIdentityFull: new Map() });
    await source.drop();
    const { rows } = await scratch.pool.query(
      `SELECT (SELECT count(*)::int FROM pg_namespace WHERE nspname = $1) AS schemas,
              (SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'public.kept'::regclass) AS triggers,
              (SELECT count(*)::int FROM public.kept) AS rows`,
      [schemaName],
    );
    assert.deepEqual(rows[0], { schemas: 0, triggers: 0, rows: 1 });
    await scratch.pool.query('INSERT INTO public.kept VALUES (2)'); // writes work without capture
  });

  test('a role without superuser or replication rights installs and streams; writers need no rights on Busbar', async (t) => {
    const suffix = randomBytes(4).toString('hex');
    const installer = `cdc_installer_${suffix}`;
    const writer = `cdc_writer_${suffix}`;
    await scratch.pool.query(`
      CREATE ROLE ${installer} LOGIN NOSUPERUSER NOREPLICATION; CREATE ROLE ${writer} LOGIN NOSUPERUSER NOREPLICATION;
      GRANT CREATE ON DATABASE ${scratch.name} TO ${installer};
      CREATE SCHEMA shop; CREATE TABLE shop.orders (id int PRIMARY KEY, total numeric);
      GRANT USAGE ON SCHEMA shop TO ${installer}, ${writer};
      GRANT TRIGGER ON shop.orders TO ${installer};
      GRANT INSERT, UPDATE ON shop.orders TO ${writer};
    `);
    const source = createTriggerSource({ connectionString: scratch.urlAs(installer), schema: `busbar_${suffix}`, pollInterval: 200 });
    t.after(async () => {
      await source.drop().catch(() => {});
      await source.close();
      await scratch.pool.query(`DROP OWNED BY ${installer}, ${writer} CASCADE; DROP ROLE ${installer}; DROP ROLE ${writer}`);
    });
    await source.ensureFor([{ schema: 'shop', name: 'orders' }], { replicaIdentityFull: new Map() });
    const sink = new RecordingSink();
    const stream = startStream(source, sink);
    await stream.connected;
    const writerPool = new pg.Pool({ connectionString: scratch.urlAs(writer), max: 1 });
    try {
      const { rows } = await writerPool.query('SELECT has_schema_privilege($1, $2, $3) AS usage', [writer, `busbar_${suffix}`, 'USAGE']);
      assert.equal(rows[0].usage, false, 'the writer has no right on Busbar schema');
      await writerPool.query('INSERT INTO shop.orders VALUES (1, 9.90)');
    } finally {
      await writerPool.end();
    }
    await sink.until(() => sink.changes.length >= 1, "the writer's row");
    await stream.stop();
    assert.deepEqual(sink.changes[0]!.data, { id: 1, total: '9.90' });
    await assert.rejects(source.removeFor({ schema: 'shop', name: 'orders' }), (error: unknown) => {
      return error instanceof BusbarError && error.code === 'BUSBAR_ERR_CDC_SETUP' && /only the table owner/.test(error.message);
    });
    await source.drop(); // as the function's owner it removes the triggers all the same
    const { rows } = await scratch.pool.query("SELECT count(*)::int AS n FROM pg_trigger WHERE tgrelid = 'shop.orders'::regclass");
    assert.equal(rows[0].n, 0);
  });

  test("a writer's search_path cannot redirect what the capture trigger calls", async () => {
    await scratch.pool.query(`
      CREATE SCHEMA evil;
      CREATE TABLE public.target (id int PRIMARY KEY);
      CREATE FUNCTION evil.to_jsonb(anyelement) RETURNS jsonb LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'hijacked to_jsonb'; END $$;
      CREATE FUNCTION evil.pg_current_xact_id() RETURNS xid8 LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'hijacked xid'; END $$;
      CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'hijacked now'; END $$;
      CREATE FUNCTION evil.gt(bigint, double precision) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'hijacked >'; END $$;
      CREATE OPERATOR evil.> (LEFTARG = bigint, RIGHTARG = double precision, FUNCTION = evil.gt);
    `);
    const source = sourceFor();
    await source.ensureFor([{ schema: 'public', name: 'target' }], { replicaIdentityFull: new Map() });
    const sink = new RecordingSink();
    const stream = startStream(source, sink);
    await stream.connected;
    const client = await scratch.pool.connect();
    try {
      await client.query('SET search_path = evil, pg_catalog, public');
      await client.query('INSERT INTO public.target VALUES (7)');
    } finally {
      client.release(true);
    }
    await sink.until(() => sink.changes.length >= 1, 'the row');
    await stream.stop();
    assert.deepEqual(sink.changes[0]!.data, { id: 7 });
    await source.drop();
  });

  test('bad targets fail clearly: a missing table, a view, a Busbar table, a newer Busbar schema', async () => {
    await scratch.pool.query('CREATE VIEW public.a_view AS SELECT 1 AS one');
    const source = sourceFor({ schema: 'busbar_checked' });
    const none = new Map<string, boolean>();
    await assert.rejects(source.ensureFor([{ schema: 'public', name: 'missing' }], { replicaIdentityFull: none }), {
      code: 'BUSBAR_ERR_NOT_FOUND',
    });
    await assert.rejects(source.ensureFor([{ schema: 'public', name: 'a_view' }], { replicaIdentityFull: none }), {
      code: 'BUSBAR_ERR_INVALID_ARGUMENT',
    });
    await assert.rejects(source.ensureFor([{ schema: 'busbar_checked', name: 'changes' }], { replicaIdentityFull: none }), {
      code: 'BUSBAR_ERR_INVALID_ARGUMENT',
    });
    await scratch.pool.query('INSERT INTO busbar_checked.migrations (version) VALUES (99)');
    const newer = sourceFor({ schema: 'busbar_checked' });
    await assert.rejects(newer.ensureFor([], { replicaIdentityFull: none }), (error: unknown) => {
      return error instanceof BusbarError && error.code === 'BUSBAR_ERR_CDC_SETUP' && /version 99/.test(error.message);
    });
    await scratch.pool.query('DELETE FROM busbar_checked.migrations WHERE version = 99');
    await source.drop();
  });
});
