/**
 * How a column value becomes JSON in a change event. Both capture modes map
 * to these canonical forms, so a consumer sees the same value whichever mode
 * captured the row; `docs/cdc.md` lists the table. The decoders read
 * PostgreSQL's text output as a session with `DateStyle=ISO`,
 * `TimeZone=UTC`, `IntervalStyle=postgres`, `extra_float_digits=3` and
 * `bytea_output=hex` prints it (replication mode forces those settings).
 *
 * Exact by design: numbers that JSON cannot hold exactly (numeric, int8 past
 * 2^53) stay strings, instants keep their microseconds.
 */
import { parse as parseArrayLiteral } from 'postgres-array';

/** Turns PostgreSQL's text output of one value of a type into its JSON form. */
export type ValueDecoder = (text: string) => unknown;

/**
 * text, varchar, uuid, enums, interval, inet, money, ranges, composites and
 * every type without a rule of its own: the text PostgreSQL prints.
 *
 * @example
 * ```ts
 * decodeAsText('1 day 02:00:00'); // '1 day 02:00:00'
 * ```
 */
export const decodeAsText: ValueDecoder = (text) => text;

/**
 * bool: `t` / `f` → true / false.
 *
 * @example
 * ```ts
 * decodeBool('t'); // true
 * ```
 */
export const decodeBool: ValueDecoder = (text) => text === 't';

/**
 * int2, int4, oid: always exact in a JS number.
 *
 * @example
 * ```ts
 * decodeInteger('-32768'); // -32768
 * ```
 */
export const decodeInteger: ValueDecoder = (text) => Number(text);

/**
 * int8: a number when it is exact in one (|v| ≤ 2^53−1), otherwise the exact
 * decimal string.
 *
 * @example
 * ```ts
 * decodeInt8('42');                  // 42
 * decodeInt8('9223372036854775807'); // '9223372036854775807'
 * ```
 */
export const decodeInt8: ValueDecoder = (text) => {
  const value = Number(text);
  // Rounding is monotonic and 2^53−1 is exact, so any text past it rounds
  // to at least 2^53, which is not a safe integer.
  return Number.isSafeInteger(value) ? value : text;
};

/**
 * float4, float8: a number; NaN and the infinities, which JSON lacks, as the
 * strings `"NaN"`, `"Infinity"`, `"-Infinity"`.
 *
 * @example
 * ```ts
 * decodeFloat('1.5');      // 1.5
 * decodeFloat('Infinity'); // 'Infinity'
 * ```
 */
export const decodeFloat: ValueDecoder = (text) =>
  text === 'NaN' || text === 'Infinity' || text === '-Infinity' ? text : Number(text);

/**
 * numeric: the exact string PostgreSQL prints, scale included (`"12.50"`).
 *
 * @example
 * ```ts
 * decodeNumeric('12.50'); // '12.50'
 * ```
 */
export const decodeNumeric: ValueDecoder = decodeAsText;

/**
 * json, jsonb: the parsed value.
 *
 * @example
 * ```ts
 * decodeJson('{"a": [1, 2]}'); // { a: [1, 2] }
 * ```
 */
export const decodeJson: ValueDecoder = (text) => JSON.parse(text);

/**
 * timestamp (without time zone): `YYYY-MM-DDTHH:MM:SS[.ffffff]`, no zone;
 * `infinity` / `-infinity` as they are.
 *
 * @example
 * ```ts
 * decodeTimestamp('2024-02-29 13:45:00.123456'); // '2024-02-29T13:45:00.123456'
 * ```
 */
export const decodeTimestamp: ValueDecoder = (text) =>
  text.length > 10 && text.charCodeAt(10) === SPACE ? `${text.slice(0, 10)}T${text.slice(11)}` : text;

/**
 * timestamptz: the instant in UTC, `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`, with the
 * microseconds PostgreSQL keeps; `infinity` / `-infinity` as they are. Reads
 * any offset (`+00`, `+05:30`, `-03:00:00`), so text printed in another time
 * zone, or by `to_jsonb`, maps to the same string.
 *
 * @example
 * ```ts
 * decodeTimestamptz('2024-02-29 13:45:00.5+00');      // '2024-02-29T13:45:00.5Z'
 * decodeTimestamptz('2024-02-29T15:45:00.5+02:00');   // '2024-02-29T13:45:00.5Z'
 * ```
 */
export const decodeTimestamptz: ValueDecoder = (text) => {
  // The common case, as a UTC session prints it: `YYYY-MM-DD HH:MM:SS[.f]+00`.
  const length = text.length;
  if (length > 22 && text.charCodeAt(10) === SPACE && text.endsWith('+00') && text.charCodeAt(4) === DASH) {
    return `${text.slice(0, 10)}T${text.slice(11, length - 3)}Z`;
  }
  const match = TIMESTAMPTZ.exec(text);
  if (match === null) return text; // infinity, BC dates: as printed
  const [, date, time, fraction = '', sign, hours, minutes = '00', seconds = '00'] = match;
  if (hours === '00' && minutes === '00' && seconds === '00') return `${date}T${time}${fraction}Z`;
  const offsetMs = (sign === '-' ? -1 : 1) * ((Number(hours) * 60 + Number(minutes)) * 60 + Number(seconds)) * 1000;
  const local = new Date(0);
  const [year, month, day] = date!.split('-').map(Number) as [number, number, number];
  local.setUTCFullYear(year, month - 1, day);
  local.setUTCHours(Number(time!.slice(0, 2)), Number(time!.slice(3, 5)), Number(time!.slice(6, 8)), 0);
  const utc = new Date(local.getTime() - offsetMs);
  return `${isoDate(utc)}T${pad2(utc.getUTCHours())}:${pad2(utc.getUTCMinutes())}:${pad2(utc.getUTCSeconds())}${fraction}Z`;
};

/**
 * bytea: base64 of the bytes. Reads the `hex` output format (`\x…`, the
 * default) and the older `escape` format.
 *
 * @example
 * ```ts
 * decodeBytea('\\x00ff'); // 'AP8='
 * ```
 */
export const decodeBytea: ValueDecoder = (text) => {
  if (text.startsWith('\\x')) return Buffer.from(text.slice(2), 'hex').toString('base64');
  return unescapeBytea(text).toString('base64');
};

/**
 * An array of any dimension: a JSON array whose elements are mapped by
 * `element`; NULL elements are null. (`postgres-array` parses the literal.)
 *
 * @example
 * ```ts
 * arrayDecoder(decodeInteger)('{{1,2},{NULL,4}}'); // [[1, 2], [null, 4]]
 * ```
 */
export function arrayDecoder(element: ValueDecoder): ValueDecoder {
  if (element === decodeAsText) return (text) => parseArrayLiteral(text);
  return (text) => parseArrayLiteral(text, element);
}

/**
 * The decoder of a built-in type by its OID, or undefined for a type that
 * needs a catalog look-up (enums, domains, arrays of those, extension types).
 *
 * @example
 * ```ts
 * builtinDecoder(20)?.('9007199254740993'); // '9007199254740993' (int8)
 * ```
 */
export function builtinDecoder(oid: number): ValueDecoder | undefined {
  return BUILTIN.get(oid);
}

/** Names of the built-in types with a rule of their own, by OID (for documentation and tests). */
export const BUILTIN_TYPE_OIDS = {
  bool: 16,
  bytea: 17,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  oid: 26,
  json: 114,
  float4: 700,
  float8: 701,
  varchar: 1043,
  date: 1082,
  time: 1083,
  timestamp: 1114,
  timestamptz: 1184,
  interval: 1186,
  timetz: 1266,
  numeric: 1700,
  uuid: 2950,
  jsonb: 3802,
} as const;

const SPACE = 0x20;
const DASH = 0x2d;
// ISO output: date, time, optional fraction, then the offset (+HH, +HH:MM or +HH:MM:SS).
const TIMESTAMPTZ = /^(\d{4,}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(\.\d+)?([+-])(\d{2})(?::(\d{2}))?(?::(\d{2}))?$/;

function pad2(value: number): string {
  return value < 10 ? `0${value}` : String(value);
}

function isoDate(date: Date): string {
  return `${String(date.getUTCFullYear()).padStart(4, '0')}-${pad2(date.getUTCMonth() + 1)}-${pad2(date.getUTCDate())}`;
}

/** bytea's escape format: `\\` is a backslash, `\ooo` an octal byte, anything else itself. */
function unescapeBytea(text: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code !== 0x5c) {
      bytes.push(code);
    } else if (text[i + 1] === '\\') {
      bytes.push(0x5c);
      i++;
    } else {
      bytes.push(Number.parseInt(text.slice(i + 1, i + 4), 8));
      i += 3;
    }
  }
  return Buffer.from(bytes);
}

const SCALARS: [number, ValueDecoder][] = [
  [16, decodeBool],
  [17, decodeBytea],
  [20, decodeInt8],
  [21, decodeInteger],
  [23, decodeInteger],
  [26, decodeInteger],
  [114, decodeJson],
  [700, decodeFloat],
  [701, decodeFloat],
  [1114, decodeTimestamp],
  [1184, decodeTimestamptz],
  [3802, decodeJson],
];

/**
 * Built-in types printed as text whose OIDs are worth knowing without a
 * catalog query: char, name, text, int2vector, regproc, tid, xid, cid,
 * oidvector, xml, point…, bpchar, varchar, date, time, interval, timetz, bit,
 * varbit, numeric, uuid, jsonpath, xid8, pg_lsn, inet, cidr, macaddr, money.
 */
const TEXT_TYPES = [
  18, 19, 22, 24, 25, 27, 28, 29, 30, 142, 600, 601, 602, 603, 604, 628, 650, 718, 774, 790, 829, 869, 1042, 1043, 1082,
  1083, 1186, 1266, 1560, 1562, 1700, 2950, 3220, 4072, 5069,
];

/** Array type OID → element type OID, for the built-in arrays. */
const ARRAYS: [number, number][] = [
  [1000, 16], [1001, 17], [1002, 18], [1003, 19], [1005, 21], [1006, 22], [1007, 23], [1008, 24], [1009, 25],
  [1010, 27], [1011, 28], [1012, 29], [1013, 30], [1028, 26], [1016, 20], [1017, 600], [1018, 601], [1019, 602],
  [1027, 604], [629, 628], [651, 650], [1021, 700], [1022, 701], [791, 790], [1040, 829], [1041, 869], [1014, 1042],
  [1015, 1043], [1182, 1082], [1183, 1083], [1115, 1114], [1185, 1184], [1187, 1186], [1270, 1266], [1561, 1560],
  [1563, 1562], [1231, 1700], [2951, 2950], [143, 142], [199, 114], [3807, 3802], [4073, 4072], [271, 5069], [3221, 3220],
];

const BUILTIN: ReadonlyMap<number, ValueDecoder> = (() => {
  const map = new Map<number, ValueDecoder>(SCALARS);
  for (const oid of TEXT_TYPES) map.set(oid, decodeAsText);
  for (const [array, element] of ARRAYS) map.set(array, arrayDecoder(map.get(element)!));
  // box[] separates elements with ';', which the array parser does not
  // read: the whole array stays text.
  map.set(1020, decodeAsText);
  map.set(603, decodeAsText);
  return map;
})();
