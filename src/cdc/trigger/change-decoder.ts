import { isDeepStrictEqual } from 'node:util';
import type { ChangeAction, ChangeData, ColumnChange, Row } from '../change.ts';
import type { TableShape, TableShapes } from './column-types.ts';
import { canonicalValue, parseRow } from './row-values.ts';

/** One row of the change table as the reader fetched it (jsonb as text). */
export interface ChangeRow {
  readonly id: string;
  readonly schema: string;
  readonly table: string;
  readonly action: string;
  readonly newRow: string | null;
  readonly oldRow: string | null;
}

/** One numbered, committed transaction with its change rows in the order they were made. */
export interface CommittedTransaction {
  readonly seq: number;
  readonly txid: string;
  /** RFC 3339 UTC with microseconds. */
  readonly committedAt: string;
  readonly rows: readonly ChangeRow[];
}

/**
 * Turns change rows into {@link ChangeData}: values mapped to their
 * canonical form by the table's column types, the primary key as `id`, and
 * for UPDATE the columns whose values differ. Column types come from
 * {@link TableShapes}, reloaded once per batch when a row shows a column
 * the cache has not seen (ADD COLUMN mid-stream).
 */
export class ChangeDecoder {
  private readonly shapes: TableShapes;
  private readonly warn: (message: string) => void;
  private readonly warned = new Set<string>();

  constructor(shapes: TableShapes, warn: (message: string) => void) {
    this.shapes = shapes;
    this.warn = warn;
  }

  /** Decodes a batch of transactions; catalog lookups happen here, the mapping itself is synchronous. */
  async decode(transactions: readonly CommittedTransaction[]): Promise<ChangeData[][]> {
    const reloaded = new Set<string>();
    const shapeOf = async (row: ChangeRow): Promise<TableShape | null> => {
      const cached = this.shapes.cached(row.schema, row.table);
      return cached === undefined ? this.shapes.load(row.schema, row.table) : cached;
    };
    const decoded: ChangeData[][] = [];
    for (const transaction of transactions) {
      const changes: ChangeData[] = [];
      for (const [index, row] of transaction.rows.entries()) {
        let shape = await shapeOf(row);
        let change = decodeRow(row, shape, transaction, index);
        const tableKey = JSON.stringify([row.schema, row.table]);
        if (change.unseen && !reloaded.has(tableKey)) {
          reloaded.add(tableKey);
          shape = await this.shapes.load(row.schema, row.table);
          change = decodeRow(row, shape, transaction, index);
        }
        this.warnAbout(row, shape);
        changes.push(change.data);
      }
      decoded.push(changes);
    }
    return decoded;
  }

  private warnAbout(row: ChangeRow, shape: TableShape | null): void {
    const name = `${row.schema}.${row.table}`;
    if (this.warned.has(name)) return;
    if (shape === null) {
      this.warned.add(name);
      this.warn(`table ${JSON.stringify(name)} no longer exists under that name: its pending changes are mapped without column types`);
    } else if (shape.key.length === 0 && row.action !== 'TRUNCATE') {
      this.warned.add(name);
      this.warn(`table ${JSON.stringify(name)} has no primary key: its changes arrive with id null`);
    }
  }
}

function decodeRow(
  row: ChangeRow,
  shape: TableShape | null,
  transaction: CommittedTransaction,
  index: number,
): { data: ChangeData; unseen: boolean } {
  const exact = shape === null || shape.needsNumberText;
  const after = row.newRow === null ? null : mapRow(parseRow(row.newRow, exact), shape);
  const before = row.oldRow === null ? null : mapRow(parseRow(row.oldRow, exact), shape);
  const action = row.action as ChangeAction;
  const data: ChangeData = {
    timestamp: transaction.committedAt,
    schema: row.schema,
    table: row.table,
    action,
    id: keyOf(after?.row ?? before?.row ?? null, shape),
    data: after?.row ?? before?.row ?? null,
    old: before?.row ?? null,
    changes: action === 'UPDATE' && after !== null && before !== null ? differences(before.row, after.row) : null,
    unchanged: [],
    txid: transaction.txid,
    lsn: `t:${transaction.seq}`,
    index,
    last: index === transaction.rows.length - 1,
  };
  return { data, unseen: (after?.unseen ?? false) || (before?.unseen ?? false) };
}

/** Maps each value by its column's type, in table column order; columns the shape lacks follow, mapped untyped. */
function mapRow(parsed: Record<string, unknown>, shape: TableShape | null): { row: Row; unseen: boolean } {
  const row: Row = {};
  let unseen = false;
  if (shape !== null) {
    for (const [column, type] of shape.columns) {
      if (Object.hasOwn(parsed, column)) row[column] = canonicalValue(parsed[column], type);
    }
  }
  for (const column of Object.keys(parsed)) {
    if (shape !== null && shape.columns.has(column)) continue;
    unseen = shape !== null;
    row[column] = canonicalValue(parsed[column], undefined);
  }
  return { row, unseen };
}

function keyOf(row: Row | null, shape: TableShape | null): unknown {
  if (row === null || shape === null || shape.key.length === 0) return null;
  if (shape.key.length === 1) return row[shape.key[0]!] ?? null;
  const id: Row = {};
  for (const column of shape.key) id[column] = row[column] ?? null;
  return id;
}

function differences(before: Row, after: Row): ColumnChange[] {
  const changes: ColumnChange[] = [];
  for (const column of new Set([...Object.keys(after), ...Object.keys(before)])) {
    const old = before[column] ?? null;
    const now = after[column] ?? null;
    if (!isDeepStrictEqual(old, now)) changes.push({ column, old, new: now });
  }
  return changes;
}
