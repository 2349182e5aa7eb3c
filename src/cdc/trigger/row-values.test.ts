import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ColumnType } from './column-types.ts';
import { canonicalValue, parseRow } from './row-values.ts';

/** Parses one to_jsonb value the way the reader does (exact numbers kept) and maps it. */
function map(json: string, type: ColumnType | undefined): unknown {
  return canonicalValue(parseRow(`{"v": ${json}}`, true).v, type);
}

const kind = (name: ColumnType['kind'], element?: ColumnType): ColumnType => ({ kind: name, ...(element ? { element } : {}) });

describe('mapping a to_jsonb value to its canonical form', () => {
  test('int8 is a number up to 2^53-1 and the exact decimal string beyond', () => {
    assert.equal(map('42', kind('int8')), 42);
    assert.equal(map('9007199254740991', kind('int8')), 9007199254740991);
    assert.equal(map('9007199254740992', kind('int8')), '9007199254740992');
    assert.equal(map('-9223372036854775808', kind('int8')), '-9223372036854775808');
  });

  test('numeric keeps the exact text PostgreSQL printed, scale and all', () => {
    assert.equal(map('12.50', kind('numeric')), '12.50');
    assert.equal(map('12', kind('numeric')), '12');
    assert.equal(map('0.1', kind('numeric')), '0.1');
    assert.equal(map('123456789012345678901234567890.000', kind('numeric')), '123456789012345678901234567890.000');
    assert.equal(map('"NaN"', kind('numeric')), 'NaN');
  });

  test('floats are numbers, even when to_jsonb printed them in full; NaN and the infinities stay strings', () => {
    assert.equal(map('0.1', kind('float')), 0.1);
    assert.equal(map(`1${'0'.repeat(300)}`, kind('float')), 1e300);
    assert.equal(map('"-Infinity"', kind('float')), '-Infinity');
    assert.ok(Object.is(map('-0', kind('float')), -0));
  });

  test('oid arrives as text and maps to a number; int4 stays a number', () => {
    assert.equal(map('"4294967295"', kind('int')), 4294967295);
    assert.equal(map('-7', kind('int')), -7);
  });

  test('json values come back as JSON.parse gives them, whatever text the numbers had', () => {
    assert.deepEqual(map('{"a": [1.0, 2.50, 12345678901234567890]}', kind('json')), { a: [1, 2.5, Number('12345678901234567890')] });
  });

  test('timestamptz printed in any zone maps to UTC with Z, keeping microseconds', () => {
    assert.equal(map('"2024-02-29T13:45:00.123456+05:30"', kind('timestamptz')), '2024-02-29T08:15:00.123456Z');
    assert.equal(map('"2024-01-01T00:30:00-01:00"', kind('timestamptz')), '2024-01-01T01:30:00Z');
    assert.equal(map('"infinity"', kind('timestamptz')), 'infinity');
  });

  test('bytea in hex or escape output maps to base64', () => {
    assert.equal(map('"\\\\x00ff"', kind('bytea')), 'AP8=');
    assert.equal(map(String.raw`"\\001\\377\\\\'"`, kind('bytea')), Buffer.from([1, 255, 92, 39]).toString('base64'));
  });

  test('arrays map element by element, at any depth, with NULL elements as null', () => {
    assert.deepEqual(map('[[1.50, null], [2, 3]]', kind('array', kind('numeric'))), [['1.50', null], ['2', '3']]);
    assert.deepEqual(map('["2024-01-01T00:00:00+00:00"]', kind('array', kind('timestamptz'))), ['2024-01-01T00:00:00Z']);
  });

  test('a column without a known type keeps big integers exact and other numbers plain', () => {
    assert.equal(map('9223372036854775807', undefined), '9223372036854775807');
    assert.equal(map('12.50', undefined), 12.5);
    assert.deepEqual(map('{"x": 1.0}', undefined), { x: 1 });
  });

  test('text-like values pass through as PostgreSQL printed them', () => {
    assert.equal(map('"1 day 02:00:00"', kind('text')), '1 day 02:00:00');
    assert.equal(map('"13:45:00+05:30"', kind('timetz')), '13:45:00+05:30');
    assert.equal(map('"2024-02-29T13:45:00.5"', kind('timestamp')), '2024-02-29T13:45:00.5');
    assert.equal(map('null', kind('text')), null);
  });
});
