import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type CdcTestDatabase, dropAllSlots, startCdcDatabase, waitFor } from '../cdc-harness.fixture.ts';
import type { CapturedTransaction, ChangeData } from '../change.ts';
import { createReplicationSource } from './replication-source.ts';

let db: CdcTestDatabase;

before(async () => {
  db = await startCdcDatabase();
  // A session in another time zone and date style: the capture must not care.
  await db.admin.query(`ALTER DATABASE postgres SET TimeZone = 'Asia/Kolkata'`);
  await db.admin.query(`ALTER DATABASE postgres SET DateStyle = 'SQL, DMY'`);
  await db.admin.query(`
    CREATE TYPE mood AS ENUM ('happy', 'sad');
    CREATE DOMAIN big_id AS int8;
    CREATE DOMAIN positive AS numeric CHECK (VALUE > 0);
    CREATE TYPE pair AS (a int, b text);
    CREATE TABLE everything (
      id int PRIMARY KEY,
      t_bool bool, t_int2 int2, t_int4 int4, t_int8 int8, t_int8_big int8, t_oid oid,
      t_float4 float4, t_float8 float8, t_nan float8, t_inf float8, t_ninf float4,
      t_numeric numeric, t_numeric_scale numeric(6,2),
      t_json json, t_jsonb jsonb,
      t_date date, t_date_inf date, t_time time, t_timetz timetz,
      t_timestamp timestamp, t_timestamptz timestamptz, t_ts_inf timestamp, t_tstz_ninf timestamptz,
      t_bytea bytea, t_text text, t_varchar varchar(20), t_char char(4), t_uuid uuid,
      t_interval interval, t_inet inet, t_money money, t_bit bit(4),
      t_enum mood, t_domain big_id, t_domain_numeric positive, t_composite pair, t_range int4range,
      a_int int[], a_text text[], a_2d int[][], a_bool bool[], a_numeric numeric[], a_jsonb jsonb[],
      a_tstz timestamptz[], a_bytea bytea[], a_enum mood[], a_domain big_id[], a_box box[], a_empty int[],
      t_null text
    )`);
});

after(async () => {
  await dropAllSlots(db.admin);
  await db.stop();
});

const EXPECTED: Record<string, unknown> = {
  id: 1,
  t_bool: true,
  t_int2: -32768,
  t_int4: 2147483647,
  t_int8: 9007199254740991,
  t_int8_big: '9223372036854775807',
  t_oid: 4294967295,
  t_float4: 1.5,
  t_float8: 0.1,
  t_nan: 'NaN',
  t_inf: 'Infinity',
  t_ninf: '-Infinity',
  t_numeric: '123456789012345678901234567890.123456789',
  t_numeric_scale: '12.50',
  t_json: { b: [1, 2], a: null },
  t_jsonb: { a: 'ünï', n: 1.25, nested: { ok: true } },
  t_date: '2024-02-29',
  t_date_inf: 'infinity',
  t_time: '13:45:00.123456',
  t_timetz: '13:45:00+02',
  t_timestamp: '2024-02-29T13:45:00.000001',
  t_timestamptz: '2024-02-29T08:15:00.123456Z',
  t_ts_inf: 'infinity',
  t_tstz_ninf: '-infinity',
  t_bytea: Buffer.from([0, 1, 254, 255]).toString('base64'),
  t_text: 'ünïcødé ✓ "quoted" \\ back',
  t_varchar: 'short',
  t_char: 'ab  ',
  t_uuid: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  t_interval: '1 day 02:00:00',
  t_inet: '192.168.0.1/24',
  t_money: '$12.50',
  t_bit: '1010',
  t_enum: 'happy',
  t_domain: '9007199254740993',
  t_domain_numeric: '3.14',
  t_composite: '(1,"x y")',
  t_range: '[1,10)',
  a_int: [1, null, 3],
  a_text: ['a b', 'with "quote"', null, 'NULL', '', 'ü'],
  a_2d: [
    [1, 2],
    [3, 4],
  ],
  a_bool: [true, false],
  a_numeric: ['1.50', 'NaN'],
  a_jsonb: [{ a: 1 }, [2]],
  a_tstz: ['2024-02-29T08:15:00.5Z', null],
  a_bytea: [Buffer.from('hi').toString('base64')],
  a_enum: ['sad', 'happy'],
  a_domain: [1, '9007199254740993'],
  a_box: '{(1,1),(0,0);(3,3),(2,2)}',
  a_empty: [],
  t_null: null,
};

describe('mapping column values', () => {
  test('every type in the mapping table arrives in its canonical JSON form', async () => {
    const source = createReplicationSource({ connectionString: db.connectionString, slotName: 'values', publicationName: 'values', onWarning: () => {} });
    const seen: ChangeData[] = [];
    const controller = new AbortController();
    await source.ensureFor([{ schema: 'public', name: 'everything' }], { replicaIdentityFull: new Map() });
    let connected = false;
    const streaming = source.stream(
      { deliver: async (transaction: CapturedTransaction) => void seen.push(...transaction.changes) },
      controller.signal,
      () => (connected = true),
    );
    try {
      await waitFor('streaming', () => connected);
      await db.admin.query(`
        INSERT INTO everything VALUES (
          1, true, -32768, 2147483647, 9007199254740991, 9223372036854775807, 4294967295,
          1.5, 0.1, 'NaN', 'Infinity', '-Infinity',
          123456789012345678901234567890.123456789, 12.5,
          '{"b": [1, 2], "a": null}', '{"nested": {"ok": true}, "a": "ünï", "n": 1.25}',
          '2024-02-29', 'infinity', '13:45:00.123456', '13:45:00+02',
          '2024-02-29 13:45:00.000001', '2024-02-29 13:45:00.123456+05:30', 'infinity', '-infinity',
          '\\x0001feff', 'ünïcødé ✓ "quoted" \\ back', 'short', 'ab', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
          '1 day 2 hours', '192.168.0.1/24', 12.5, B'1010',
          'happy', 9007199254740993, 3.14, ROW(1, 'x y'), '[1,10)',
          '{1,NULL,3}', ARRAY['a b', 'with "quote"', NULL, 'NULL', '', 'ü'], '{{1,2},{3,4}}', '{t,f}', '{1.50,NaN}',
          ARRAY['{"a": 1}'::jsonb, '[2]'::jsonb], ARRAY['2024-02-29 13:45:00.5+05:30'::timestamptz, NULL], ARRAY['\\x6869'::bytea],
          '{sad,happy}', '{1,9007199254740993}', ARRAY[box '((0,0),(1,1))', box '((2,2),(3,3))'], '{}',
          NULL
        )`);
      await db.admin.query(`UPDATE everything SET t_text = 'changed', a_int = '{}' WHERE id = 1`);
      await waitFor('the insert and the update', () => seen.length >= 2);
    } finally {
      controller.abort();
      await streaming;
    }
    const [inserted, updated] = seen;
    for (const [column, expected] of Object.entries(EXPECTED)) {
      assert.deepEqual(inserted!.data![column], expected, `column ${column}`);
    }
    assert.deepEqual(Object.keys(inserted!.data!), Object.keys(EXPECTED));
    // Unchanged arrays, jsonb and numerics are not reported as changes; the changed ones are.
    assert.deepEqual(updated!.changes, [
      { column: 't_text', old: EXPECTED.t_text, new: 'changed' },
      { column: 'a_int', old: [1, null, 3], new: [] },
    ]);
    // The JSON round trip keeps every value (no undefined, no bigint, no NaN number).
    assert.deepEqual(JSON.parse(JSON.stringify(inserted!.data)), EXPECTED);
    await source.drop();
    await source.close();
  });
});
