import { decodeBytea, decodeInt8, decodeTimestamptz } from '../values.ts';
import type { ColumnType } from './column-types.ts';

/**
 * A JSON number whose exact text a plain JSON.parse would lose (an int8
 * beyond 2^53, a numeric such as `12.50`). Only ever lives between parsing a
 * row and mapping its values.
 */
class NumberText {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
}

type Reviver = (this: unknown, key: string, value: unknown) => unknown;

// Node ≥ 21 passes the number's source text as `context.source`: numbers
// that print back differently keep it, the rest stay plain numbers.
const keepNumberText = ((_key: string, value: unknown, context?: { source?: string }) =>
  typeof value === 'number' && context?.source !== undefined && context.source !== String(value)
    ? new NumberText(context.source)
    : value) as Reviver;

/**
 * Parses a row as `to_jsonb` printed it. `exact` keeps the source text of
 * numbers that would lose digits or formatting (slower, so only for tables
 * with int8 or numeric columns).
 */
export function parseRow(text: string, exact: boolean): Record<string, unknown> {
  return JSON.parse(text, exact ? keepNumberText : undefined) as Record<string, unknown>;
}

/**
 * The canonical value of one column, from what `to_jsonb` made of it, so
 * that trigger mode and replication mode deliver equal values (the leaf
 * rules are `values.ts`'s): int8 beyond 2^53 and numeric as exact strings,
 * timestamptz in UTC with `Z`, bytea as base64, arrays element by element;
 * `type` undefined (a column the catalog no longer has) maps by the JSON
 * alone.
 *
 * @example
 * ```ts
 * canonicalValue(parseRow('{"a": 12.50}', true).a, { kind: 'numeric' }); // '12.50'
 * ```
 */
export function canonicalValue(value: unknown, type: ColumnType | undefined): unknown {
  if (value === null || value === undefined) return null;
  switch (type?.kind) {
    case 'bool':
      return value;
    case 'int':
      // oid arrives as a string: to_jsonb prints it with its text output.
      if (value instanceof NumberText) return Number(value.text);
      return typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
    case 'int8':
      return int8Value(value);
    case 'float':
      return value instanceof NumberText ? Number(value.text) : value;
    case 'numeric':
      if (value instanceof NumberText) return value.text;
      return typeof value === 'number' ? String(value) : value;
    case 'timestamptz':
      // to_jsonb prints it in the writer's time zone, with a T: decodeTimestamptz reads that form too.
      return typeof value === 'string' ? decodeTimestamptz(value) : plainJson(value);
    case 'bytea':
      // to_jsonb prints bytea as its text output (hex, or escape where the writer set bytea_output).
      return typeof value === 'string' ? decodeBytea(value) : value;
    case 'array':
      return Array.isArray(value) ? arrayValue(value, type.element) : plainJson(value);
    case undefined:
      return untypedValue(value);
    default:
      // json/jsonb, date, time, timetz, timestamp and text output: to_jsonb
      // already prints these as PostgreSQL's own output does.
      return plainJson(value);
  }
}

/**
 * A multi-dimensional array arrives as nested JSON arrays: inner arrays are
 * dimensions, not elements. (For json elements the two read alike, and
 * plainJson maps both the same way.)
 */
function arrayValue(values: readonly unknown[], element: ColumnType | undefined): unknown[] {
  return values.map((each) =>
    Array.isArray(each) && element?.kind !== 'json' ? arrayValue(each, element) : canonicalValue(each, element),
  );
}

function int8Value(value: unknown): unknown {
  if (value instanceof NumberText) return decodeInt8(value.text);
  return typeof value === 'number' ? decodeInt8(String(value)) : value;
}

/** A JSON value with every kept number text turned back into a plain number, as JSON.parse gives it. */
function plainJson(value: unknown): unknown {
  if (value instanceof NumberText) return Number(value.text);
  if (Array.isArray(value)) return value.map(plainJson);
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [key, each] of Object.entries(value)) out[key] = plainJson(each);
    return out;
  }
  return value;
}

/** Without a type: integers keep their exact text beyond 2^53, other numbers become numbers. */
function untypedValue(value: unknown): unknown {
  if (value instanceof NumberText) return /^-?\d+$/.test(value.text) ? int8Value(value) : Number(value.text);
  if (Array.isArray(value)) return value.map(untypedValue);
  if (typeof value === 'object' && value !== null) return plainJson(value);
  return value;
}
