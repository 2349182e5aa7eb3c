import type { ColumnChange, Row } from '../change.ts';
import type { DeleteMessage, TupleValue, UpdateMessage } from './pgoutput-decoder.ts';
import { UNCHANGED } from './pgoutput-decoder.ts';
import type { CapturedColumn, CapturedRelation } from './relation-cache.ts';

/** The row-level fields of a change: what the tuples of one message say. */
export interface MappedRow {
  id: unknown;
  data: Row | null;
  old: Row | null;
  changes: ColumnChange[] | null;
  unchanged: string[];
}

// Most changes have no unchanged column: they share one frozen empty list.
const NONE = Object.freeze([]) as unknown as string[];

/**
 * An INSERT's row. (A new tuple never holds unchanged values, but if one
 * did it would be listed, not guessed.)
 *
 * @example
 * ```ts
 * insertRow(relation, message.newTuple); // { id: 1, data: { id: 1, name: 'Ada' }, old: null, changes: null, unchanged: [] }
 * ```
 */
export function insertRow(relation: CapturedRelation, tuple: TupleValue[]): MappedRow {
  const unchanged: string[] = [];
  const data = rowOf(relation.columns, tuple, false, unchanged);
  return { id: keyOf(relation, data), data, old: null, changes: null, unchanged: unchanged.length === 0 ? NONE : unchanged };
}

/**
 * An UPDATE's row. An unchanged TOASTed value is taken from the old row when
 * it came whole (REPLICA IDENTITY FULL), otherwise the column is left out of
 * `data` and listed in `unchanged`. `old` is the old row (FULL) or the old
 * key (the key changed), else null; `changes` lists the columns whose text
 * differs between old and new, and is null when there is no old row.
 *
 * @example
 * ```ts
 * updateRow(relation, message).changes; // [{ column: 'name', old: 'Ada', new: 'Grace' }]
 * ```
 */
export function updateRow(relation: CapturedRelation, message: UpdateMessage): MappedRow {
  const { columns } = relation;
  const oldTuple = message.oldTuple;
  const newTuple = message.newTuple;
  const wholeOld = message.oldKind === 'O' ? oldTuple : undefined;
  const unchanged: string[] = [];
  const data: Row = {};
  for (let i = 0; i < columns.length; i++) {
    let value = newTuple[i];
    if (value === UNCHANGED) {
      const known = wholeOld?.[i];
      if (known === undefined || known === UNCHANGED) {
        unchanged.push(columns[i]!.name);
        continue;
      }
      value = known;
      newTuple[i] = known; // so the comparison below sees it unchanged
    }
    data[columns[i]!.name] = valueOf(columns[i]!, value);
  }
  let old: Row | null = null;
  let changes: ColumnChange[] | null = null;
  if (oldTuple !== undefined) {
    old = rowOf(columns, oldTuple, message.oldKind === 'K', undefined);
    changes = [];
    for (let i = 0; i < columns.length; i++) {
      const before = oldTuple[i];
      const after = newTuple[i];
      if (before === UNCHANGED || after === UNCHANGED || before === undefined || after === undefined) continue;
      if (message.oldKind === 'K' && !columns[i]!.isKey) continue;
      if (!sameValue(before, after)) {
        const column = columns[i]!.name;
        changes.push({ column, old: old[column], new: data[column] });
      }
    }
  }
  return { id: keyOf(relation, data), data, old, changes, unchanged: unchanged.length === 0 ? NONE : unchanged };
}

/**
 * A DELETE's row: the old row as it was (REPLICA IDENTITY FULL) or its key
 * columns only (DEFAULT); `data` and `old` are that same row.
 *
 * @example
 * ```ts
 * deleteRow(relation, message); // { id: 1, data: { id: 1 }, old: { id: 1 }, changes: null, unchanged: [] }
 * ```
 */
export function deleteRow(relation: CapturedRelation, message: DeleteMessage): MappedRow {
  const unchanged: string[] = [];
  const old = rowOf(relation.columns, message.oldTuple, message.oldKind === 'K', unchanged);
  return { id: keyOf(relation, old), data: old, old, changes: null, unchanged: unchanged.length === 0 ? NONE : unchanged };
}

function rowOf(columns: readonly CapturedColumn[], tuple: TupleValue[], keysOnly: boolean, unchanged: string[] | undefined): Row {
  const row: Row = {};
  for (let i = 0; i < columns.length; i++) {
    const column = columns[i]!;
    if (keysOnly && !column.isKey) continue;
    const value = tuple[i];
    if (value === undefined) continue; // a column added after this tuple was written
    if (value === UNCHANGED) {
      unchanged?.push(column.name);
      continue;
    }
    row[column.name] = valueOf(column, value);
  }
  return row;
}

function valueOf(column: CapturedColumn, value: string | null | Buffer): unknown {
  if (value === null) return null;
  if (typeof value === 'string') return column.decode(value);
  return value.toString('base64');
}

function sameValue(a: string | null | Buffer, b: string | null | Buffer): boolean {
  if (typeof a === 'string' || a === null) return a === b;
  return b !== null && typeof b !== 'string' && a.equals(b);
}

/** The primary key: one column's value, an object for a composite key, null without a key. */
function keyOf(relation: CapturedRelation, row: Row): unknown {
  const key = relation.primaryKey;
  if (key.length === 0) return null;
  if (key.length === 1) return row[relation.columns[key[0]!]!.name] ?? null;
  const id: Row = {};
  for (const index of key) {
    const name = relation.columns[index]!.name;
    id[name] = row[name] ?? null;
  }
  return id;
}
