import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  arrayDecoder,
  BUILTIN_TYPE_OIDS as OID,
  builtinDecoder,
  decodeAsText,
  decodeBool,
  decodeBytea,
  decodeFloat,
  decodeInt8,
  decodeInteger,
  decodeJson,
  decodeTimestamp,
  decodeTimestamptz,
} from './values.ts';

/** Decodes `text` as PostgreSQL prints a value of the built-in type `oid`. */
function decode(oid: number, text: string): unknown {
  const decoder = builtinDecoder(oid);
  assert.ok(decoder, `no decoder for OID ${oid}`);
  return decoder(text);
}

describe('the canonical value of each type', () => {
  test('bool maps t and f to true and false', () => {
    assert.equal(decode(OID.bool, 't'), true);
    assert.equal(decode(OID.bool, 'f'), false);
    assert.equal(decodeBool('t'), true);
  });

  test('int2, int4 and oid map to numbers', () => {
    assert.equal(decode(OID.int2, '-32768'), -32768);
    assert.equal(decode(OID.int4, '2147483647'), 2147483647);
    assert.equal(decode(OID.oid, '4294967295'), 4294967295);
    assert.equal(decodeInteger('0'), 0);
  });

  test('int8 is a number up to 2^53-1 and the exact decimal string beyond', () => {
    assert.equal(decode(OID.int8, '42'), 42);
    assert.equal(decode(OID.int8, '9007199254740991'), 9007199254740991);
    assert.equal(decode(OID.int8, '-9007199254740991'), -9007199254740991);
    assert.equal(decode(OID.int8, '9007199254740992'), '9007199254740992');
    assert.equal(decode(OID.int8, '9007199254740993'), '9007199254740993');
    assert.equal(decodeInt8('-9223372036854775808'), '-9223372036854775808');
  });

  test('float4 and float8 map to numbers and NaN and the infinities to strings', () => {
    assert.equal(decode(OID.float8, '1.5'), 1.5);
    assert.equal(decode(OID.float8, '0.1'), 0.1);
    assert.equal(decode(OID.float8, '1e+308'), 1e308);
    assert.equal(decode(OID.float4, '3.4028235e+38'), 3.4028235e38);
    assert.equal(decode(OID.float4, 'NaN'), 'NaN');
    assert.equal(decode(OID.float8, 'Infinity'), 'Infinity');
    assert.equal(decodeFloat('-Infinity'), '-Infinity');
  });

  test('numeric keeps the exact text with its scale', () => {
    assert.equal(decode(OID.numeric, '12.50'), '12.50');
    assert.equal(decode(OID.numeric, '123456789012345678901234567890.123'), '123456789012345678901234567890.123');
    assert.equal(decode(OID.numeric, 'NaN'), 'NaN');
  });

  test('json and jsonb map to the parsed value', () => {
    assert.deepEqual(decode(OID.jsonb, '{"a": [1, "x", null, true], "b": {"c": 1.5}}'), {
      a: [1, 'x', null, true],
      b: { c: 1.5 },
    });
    assert.deepEqual(decode(OID.json, '[1,2]'), [1, 2]);
    assert.equal(decodeJson('"just a string"'), 'just a string');
  });

  test('date and time keep the ISO text', () => {
    assert.equal(decode(OID.date, '2024-02-29'), '2024-02-29');
    assert.equal(decode(OID.time, '13:45:00'), '13:45:00');
    assert.equal(decode(OID.time, '13:45:00.123456'), '13:45:00.123456');
  });

  test('timetz keeps the text as printed', () => {
    assert.equal(decode(OID.timetz, '13:45:00+02'), '13:45:00+02');
  });

  test('timestamp uses a T and no zone', () => {
    assert.equal(decode(OID.timestamp, '2024-02-29 13:45:00'), '2024-02-29T13:45:00');
    assert.equal(decode(OID.timestamp, '2024-02-29 13:45:00.000001'), '2024-02-29T13:45:00.000001');
    assert.equal(decodeTimestamp('infinity'), 'infinity');
  });

  test('timestamptz is the instant in UTC with a Z and keeps the microseconds', () => {
    assert.equal(decode(OID.timestamptz, '2024-02-29 13:45:00.123456+00'), '2024-02-29T13:45:00.123456Z');
    assert.equal(decode(OID.timestamptz, '2024-02-29 13:45:00+00'), '2024-02-29T13:45:00Z');
  });

  test('timestamptz printed with another offset maps to the same UTC string', () => {
    assert.equal(decodeTimestamptz('2024-03-01 01:15:00.5+05:30'), '2024-02-29T19:45:00.5Z');
    assert.equal(decodeTimestamptz('2024-12-31T22:00:00-03:00'), '2025-01-01T01:00:00Z');
    assert.equal(decodeTimestamptz('0099-01-01 00:00:00+01'), '0098-12-31T23:00:00Z');
  });

  test('infinite dates and timestamps are "infinity" and "-infinity"', () => {
    assert.equal(decode(OID.date, 'infinity'), 'infinity');
    assert.equal(decode(OID.timestamp, '-infinity'), '-infinity');
    assert.equal(decode(OID.timestamptz, 'infinity'), 'infinity');
    assert.equal(decode(OID.timestamptz, '-infinity'), '-infinity');
  });

  test('bytea maps to base64, from the hex and the escape format', () => {
    assert.equal(decode(OID.bytea, '\\x00ff10'), Buffer.from([0, 255, 16]).toString('base64'));
    assert.equal(decode(OID.bytea, '\\x'), '');
    assert.equal(decodeBytea('a\\000\\\\b'), Buffer.from([0x61, 0, 0x5c, 0x62]).toString('base64'));
  });

  test('arrays of any dimension map to JSON arrays of mapped elements with null for NULL', () => {
    assert.deepEqual(decode(1007, '{1,2,3}'), [1, 2, 3]);
    assert.deepEqual(decode(1016, '{{1,9223372036854775807},{NULL,4}}'), [
      [1, '9223372036854775807'],
      [null, 4],
    ]);
    assert.deepEqual(decode(1009, '{"a b","with \\"quote\\"",NULL,"NULL",""}'), [
      'a b',
      'with "quote"',
      null,
      'NULL',
      '',
    ]);
    assert.deepEqual(decode(1000, '{t,f,NULL}'), [true, false, null]);
    assert.deepEqual(decode(1231, '{1.50,NaN}'), ['1.50', 'NaN']);
    assert.deepEqual(decode(1185, '{"2024-02-29 13:45:00.5+00",infinity}'), ['2024-02-29T13:45:00.5Z', 'infinity']);
    assert.deepEqual(decode(1001, '{"\\\\x00ff"}'), ['AP8=']);
    assert.deepEqual(decode(3807, '{"{\\"a\\": 1}","[]"}'), [{ a: 1 }, []]);
    assert.deepEqual(decode(1007, '{}'), []);
    assert.deepEqual(decode(1007, '[0:1]={5,6}'), [5, 6]);
    assert.deepEqual(arrayDecoder(decodeAsText)('{x,y}'), ['x', 'y']);
  });

  test('everything else keeps PostgreSQL text output', () => {
    assert.equal(decode(OID.text, 'ünïcødé ✓'), 'ünïcødé ✓');
    assert.equal(decode(OID.varchar, ''), '');
    assert.equal(decode(OID.uuid, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'), 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
    assert.equal(decode(OID.interval, '1 day 02:00:00'), '1 day 02:00:00');
    assert.equal(decode(869, '192.168.0.1/24'), '192.168.0.1/24'); // inet
    assert.equal(decode(790, '$12.50'), '$12.50'); // money
    assert.equal(decode(1020, '{(1,1),(0,0);(2,2),(1,1)}'), '{(1,1),(0,0);(2,2),(1,1)}'); // box[]: ';' separated
  });

  test('types that need the catalog (enums, domains, extension types) have no built-in decoder', () => {
    assert.equal(builtinDecoder(99999), undefined);
  });
});
