import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import type { CaptureSource } from '../capture-source.ts';
import { TypeCatalog } from '../type-catalog.ts';
import {
  type CaptureDatabase,
  idsOf,
  openCaptureDatabase,
  RecordingSink,
  type RunningStream,
  startStream,
} from './trigger-test.fixture.ts';

let db: CaptureDatabase;
let source: CaptureSource;
let sink: RecordingSink;
let stream: RunningStream;
let app: string;

/** Waits until `count` more changes than `from` have arrived and returns the new ones. */
async function next(from: number, count: number, what: string) {
  await sink.until(() => sink.changes.length >= from + count, what);
  return sink.changes.slice(from, from + count);
}

before(async () => {
  db = await openCaptureDatabase();
  app = db.quotedApp;
  await db.admin.query(`
    CREATE TABLE ${app}.person (id int PRIMARY KEY, name text NOT NULL, age int, note text);
    CREATE TABLE ${app}.membership (team text, member int, role text, PRIMARY KEY (team, member));
    CREATE TABLE ${app}.log_line (line text, at timestamptz DEFAULT now());
    CREATE TABLE ${app}.blob (id int PRIMARY KEY, body text, data bytea);
    CREATE TABLE ${app}.evolving (id int PRIMARY KEY, a text);
    CREATE TYPE ${app}.mood AS ENUM ('sad', 'happy');
    CREATE DOMAIN ${app}.amount AS numeric(12, 2);
    CREATE TABLE ${app}.kinds (
      id int PRIMARY KEY, b bool, i2 int2, i4 int4, i8_small int8, i8_big int8, f4 float4, f8 float8,
      f8_nan float8, f8_inf float8, n numeric, n_nan numeric, j json, jb jsonb, d date, t time, ttz timetz,
      ts timestamp, tstz timestamptz, tstz_inf timestamptz, raw bytea, txt text, u uuid, iv interval,
      ia int[], ta text[], na numeric[], tsa timestamptz[], na2 numeric[], dm ${app}.amount, e ${app}.mood, o oid
    );
  `);
  source = db.source();
  const tables = ['person', 'membership', 'log_line', 'blob', 'evolving', 'kinds'].map((name) => ({ schema: db.app, name }));
  await source.ensureFor(tables, { replicaIdentityFull: new Map() });
  sink = new RecordingSink();
  stream = startStream(source, sink);
  await stream.connected;
});

after(async () => {
  await stream?.stop().catch(() => {});
  await db?.cleanup();
});

describe('trigger mode delivers each change with the seed payload', () => {
  test('an insert, an update and a delete arrive with data, old, id and the changed columns', async () => {
    const from = sink.changes.length;
    await db.admin.query(`INSERT INTO ${app}.person VALUES (1, 'Ada', 36, NULL)`);
    await db.admin.query(`UPDATE ${app}.person SET age = 37, note = 'birthday' WHERE id = 1`);
    await db.admin.query(`DELETE FROM ${app}.person WHERE id = 1`);
    const [insert, update, remove] = await next(from, 3, 'insert, update and delete');

    assert.equal(insert!.schema, db.app);
    assert.equal(insert!.table, 'person');
    assert.equal(insert!.action, 'INSERT');
    assert.equal(insert!.id, 1);
    assert.deepEqual(insert!.data, { id: 1, name: 'Ada', age: 36, note: null });
    assert.deepEqual(Object.keys(insert!.data!), ['id', 'name', 'age', 'note'], 'columns in table order');
    assert.equal(insert!.old, null);
    assert.equal(insert!.changes, null);
    assert.deepEqual(insert!.unchanged, []);

    assert.equal(update!.action, 'UPDATE');
    assert.deepEqual(update!.data, { id: 1, name: 'Ada', age: 37, note: 'birthday' });
    assert.deepEqual(update!.old, { id: 1, name: 'Ada', age: 36, note: null });
    assert.deepEqual(update!.changes, [
      { column: 'age', old: 36, new: 37 },
      { column: 'note', old: null, new: 'birthday' },
    ]);

    assert.equal(remove!.action, 'DELETE');
    assert.equal(remove!.id, 1);
    assert.deepEqual(remove!.data, { id: 1, name: 'Ada', age: 37, note: 'birthday' });
    assert.deepEqual(remove!.old, remove!.data);

    for (const change of [insert!, update!, remove!]) {
      assert.match(change.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      assert.match(change.lsn, /^t:\d+$/);
      assert.match(change.txid, /^\d+$/);
      assert.equal(change.index, 0);
      assert.equal(change.last, true);
    }
    const positions = [insert!, update!, remove!].map((change) => Number(change.lsn.slice(2)));
    assert.ok(positions[0]! < positions[1]! && positions[1]! < positions[2]!, `commit order: ${positions.join(', ')}`);
  });

  test("a transaction's changes arrive together, in the order they were made, with index and last", async () => {
    const before = sink.transactions.length;
    const client = await db.connect();
    await client.query('BEGIN');
    await client.query(`INSERT INTO ${app}.person VALUES (10, 'first', 1, NULL), (11, 'second', 2, NULL)`);
    await client.query(`UPDATE ${app}.person SET age = 3 WHERE id = 10`);
    await client.query(`DELETE FROM ${app}.person WHERE id = 11`);
    await client.query('COMMIT');
    await sink.until(() => sink.transactions.length > before, 'the transaction');
    const transaction = sink.transactions[before]!;
    assert.deepEqual(
      transaction.changes.map((change) => [change.action, change.id, change.index, change.last]),
      [
        ['INSERT', 10, 0, false],
        ['INSERT', 11, 1, false],
        ['UPDATE', 10, 2, false],
        ['DELETE', 11, 3, true],
      ],
    );
    assert.equal(new Set(transaction.changes.map((change) => change.txid)).size, 1);
    assert.equal(new Set(transaction.changes.map((change) => change.lsn)).size, 1);
    assert.equal(transaction.position, Number(transaction.changes[0]!.lsn.slice(2)));
  });

  test('a rolled-back transaction and a rolled-back savepoint leave nothing behind', async () => {
    const from = sink.changes.length;
    const client = await db.connect();
    await client.query(`BEGIN; INSERT INTO ${app}.person VALUES (20, 'rolled back', 1, NULL); ROLLBACK`);
    await client.query(`BEGIN; INSERT INTO ${app}.person VALUES (21, 'kept', 1, NULL); SAVEPOINT s;
                        INSERT INTO ${app}.person VALUES (22, 'undone', 1, NULL); ROLLBACK TO SAVEPOINT s; COMMIT`);
    await db.admin.query(`INSERT INTO ${app}.person VALUES (23, 'marker', 1, NULL)`);
    await sink.until(() => idsOf(sink.changes).includes(23), 'the marker row');
    assert.deepEqual(idsOf(sink.changes.slice(from)), [21, 23]);
  });

  test('rows over 8 kB and over 1 MB are written and arrive whole', async () => {
    const from = sink.changes.length;
    const medium = 'm'.repeat(9000);
    const large = 'ü'.repeat(600_000); // 1.2 MB of UTF-8
    const bytes = Buffer.alloc(2_000_000, 7);
    await db.admin.query(`INSERT INTO ${app}.blob VALUES (1, $1, NULL)`, [medium]);
    await db.admin.query(`INSERT INTO ${app}.blob VALUES (2, $1, $2)`, [large, bytes]);
    const [eight, mega] = await next(from, 2, 'the large rows');
    assert.equal(eight!.data!.body, medium);
    assert.equal(mega!.data!.body, large);
    assert.equal(mega!.data!.data, bytes.toString('base64'));
  });

  test('a composite primary key arrives as an object', async () => {
    const from = sink.changes.length;
    await db.admin.query(`INSERT INTO ${app}.membership VALUES ('core', 7, 'lead')`);
    const [change] = await next(from, 1, 'the membership row');
    assert.deepEqual(change!.id, { team: 'core', member: 7 });
  });

  test('a table without a primary key delivers id null and warns once', async () => {
    const from = sink.changes.length;
    await db.admin.query(`INSERT INTO ${app}.log_line (line) VALUES ('one'), ('two')`);
    const changes = await next(from, 2, 'the log lines');
    assert.deepEqual(changes.map((change) => [change.id, change.data!.line]), [[null, 'one'], [null, 'two']]);
    const warned = db.warnings.filter((warning) => warning.includes('log_line') && warning.includes('no primary key'));
    assert.ok(warned.length >= 1, `a warning names the table: ${db.warnings.join(' | ')}`);
  });

  test('TRUNCATE arrives as an event of its own with no row', async () => {
    const from = sink.changes.length;
    await db.admin.query(`TRUNCATE ${app}.log_line`);
    const [change] = await next(from, 1, 'the truncate');
    assert.equal(change!.action, 'TRUNCATE');
    assert.equal(change!.table, 'log_line');
    assert.equal(change!.id, null);
    assert.equal(change!.data, null);
    assert.equal(change!.old, null);
  });

  test('ADD and DROP COLUMN mid-stream: each row carries the columns it had', async () => {
    const from = sink.changes.length;
    await db.admin.query(`INSERT INTO ${app}.evolving VALUES (1, 'before')`);
    await next(from, 1, 'the first row'); // the reader has cached the table's columns now
    await db.admin.query(`ALTER TABLE ${app}.evolving ADD COLUMN big int8`);
    await db.admin.query(`INSERT INTO ${app}.evolving VALUES (2, 'added', 9007199254740993)`);
    await db.admin.query(`ALTER TABLE ${app}.evolving DROP COLUMN a`);
    await db.admin.query(`INSERT INTO ${app}.evolving VALUES (3, 5)`);
    const [, added, dropped] = await next(from, 3, 'rows around the ALTERs');
    assert.deepEqual(added!.data, { id: 2, a: 'added', big: '9007199254740993' }, 'a new int8 column is mapped by its type');
    assert.deepEqual(dropped!.data, { id: 3, big: 5 });
  });
});

describe('values map to the canonical form both capture modes share', () => {
  const writerSession = `SET TimeZone = 'America/New_York'; SET bytea_output = 'escape'; SET extra_float_digits = 1`;
  const kindsRow = `INSERT INTO kinds VALUES (1, true, -32768, 2147483647, 42, 9223372036854775807, 1.5, 0.1,
    'NaN', '-Infinity', 12.50, 'NaN', '{"b": null, "a": [1, 2.50]}', '{"b": null, "a": [1, 2.50]}', '2024-02-29',
    '13:45:00.123456', '13:45:00+05:30', '2024-02-29 13:45:00.5', '2024-02-29 13:45:00.5+02', 'infinity',
    '\\x00ff5c27', 'ünïcødé ✓ 🎉', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '1 day 2 hours', '{{1,2},{3,NULL}}',
    '{a,NULL,"c\\"d"}', '{1.50,2}', '{"2024-01-01 00:00:00+00",NULL}', '{{1.50,NULL},{2,3.000}}', 12.3, 'happy', 4294967295)`;

  test('each type maps as the table in docs/cdc.md says, whatever the writer session prints', async () => {
    const from = sink.changes.length;
    const client = await db.connect();
    await client.query(`${writerSession}; SET search_path = ${app}; ${kindsRow}`);
    await client.query(`INSERT INTO ${app}.kinds (id) VALUES (2)`);
    const [full, nulls] = await next(from, 2, 'the kinds rows');
    assert.deepEqual(full!.data, {
      id: 1,
      b: true,
      i2: -32768,
      i4: 2147483647,
      i8_small: 42,
      i8_big: '9223372036854775807',
      f4: 1.5,
      f8: 0.1,
      f8_nan: 'NaN',
      f8_inf: '-Infinity',
      n: '12.50',
      n_nan: 'NaN',
      j: { a: [1, 2.5], b: null },
      jb: { a: [1, 2.5], b: null },
      d: '2024-02-29',
      t: '13:45:00.123456',
      ttz: '13:45:00+05:30',
      ts: '2024-02-29T13:45:00.5',
      tstz: '2024-02-29T11:45:00.5Z',
      tstz_inf: 'infinity',
      raw: Buffer.from([0x00, 0xff, 0x5c, 0x27]).toString('base64'),
      txt: 'ünïcødé ✓ 🎉',
      u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      iv: '1 day 02:00:00',
      ia: [[1, 2], [3, null]],
      ta: ['a', null, 'c"d'],
      na: ['1.50', '2'],
      tsa: ['2024-01-01T00:00:00Z', null],
      na2: [['1.50', null], ['2', '3.000']],
      dm: '12.30',
      e: 'happy',
      o: 4294967295,
    });
    for (const [column, value] of Object.entries(nulls!.data!)) {
      if (column !== 'id') assert.equal(value, null, `${column} is null`);
    }
  });

  test("each value equals what values.ts decodes from PostgreSQL's text output (replication mode's path)", async () => {
    const from = sink.changes.length;
    const client = await db.connect();
    await client.query(`${writerSession}; SET search_path = ${app}; ${kindsRow.replace('VALUES (1,', 'VALUES (3,')}`);
    const [change] = await next(from, 1, 'the kinds row');
    // Replication mode reads text output under these settings (values.ts).
    const reader = await db.connect();
    await reader.query(
      `SET DateStyle = ISO; SET TimeZone = 'UTC'; SET IntervalStyle = postgres; SET extra_float_digits = 3; SET bytea_output = hex`,
    );
    const { rows: columns } = await reader.query<{ name: string; type: number }>(
      `SELECT attname AS name, atttypid::int AS type FROM pg_attribute
       WHERE attrelid = '${app}.kinds'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    );
    const catalog = new TypeCatalog(reader);
    await catalog.resolve(columns.map((column) => column.type));
    // Every value exactly as the type's output function prints it: no driver parsing.
    const rawText = { getTypeParser: () => (text: string) => text } as unknown as pg.CustomTypesConfig;
    const { rows } = await reader.query({ text: `SELECT * FROM ${app}.kinds WHERE id = 3`, rowMode: 'array', types: rawText });
    for (const [i, column] of columns.entries()) {
      const text = rows[0][i] as string | null;
      const expected = text === null ? null : catalog.decoderFor(column.type)!(text);
      assert.deepEqual(change!.data![column.name], expected, `column ${column.name} (text ${JSON.stringify(text)})`);
    }
  });
});
