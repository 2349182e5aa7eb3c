import type { Client } from 'pg';
import type { TableName } from '../capture-source.ts';
import type { ChangeData, Row } from '../change.ts';
import type { TypeCatalog } from '../type-catalog.ts';
import { decodeAsText, type ValueDecoder } from '../values.ts';
import { keyText } from './snapshot-window.ts';

/** A column as the snapshot reads it: pgoutput's columns (no dropped or generated ones), in attnum order. */
interface ShapeColumn {
  readonly name: string;
  readonly typeOid: number;
  decode: ValueDecoder;
}

/** A table's columns and primary key, read under the chunk's lock. */
export interface TableShape {
  readonly columns: readonly ShapeColumn[];
  /** Names of the primary key's columns, in key order; empty without one. */
  readonly keyColumns: readonly string[];
  /** Indexes of the key's columns in `columns`. */
  readonly keyIndexes: readonly number[];
}

/** One chunk: its rows as READ changes, and where the next chunk starts. */
export interface Chunk {
  readonly shape: TableShape;
  /** READ changes in key order; `index` and `last` are set when they are delivered. */
  readonly reads: ChangeData[];
  /** The key text of each READ, for matching stream changes. */
  readonly keys: string[];
  /** PostgreSQL's text of the last row's key columns; null when the chunk is empty. */
  readonly lastKey: string[] | null;
  /** True when the table has no rows after this chunk. */
  readonly last: boolean;
  /** The primary key is not the one the snapshot chunks by any more: nothing was read. */
  readonly keyChanged: boolean;
}

export interface ChunkReaderOptions {
  /** A connection of its own with Busbar's output settings (DateStyle ISO, UTC…), as the stream's. */
  readonly client: Client;
  readonly quote: (identifier: string) => string;
  readonly types: TypeCatalog;
  /** Rows per chunk at most. */
  readonly chunkSize: number;
  /** Text bytes per chunk at most: a chunk of very wide rows ends early (its last key says where). */
  readonly chunkBytes: number;
}

const CURSOR = 'busbar_snapshot_chunk';
const UNDEFINED_TABLE = '42P01';
const FIRST_FETCH_ROWS = 64;
const FETCH_ROWS = 1000;
/** Every value as the text PostgreSQL sent, the way pgoutput sends it, for the same decoders. */
const RAW = { getTypeParser: () => (text: string) => text };

/**
 * Reads a table's rows in primary-key order, one chunk per transaction:
 * the table is locked (ACCESS SHARE, so no ALTER slips in) before the
 * REPEATABLE READ snapshot is taken, its shape read, then up to
 * `chunkSize` rows after the last key fetched through a cursor, so a chunk
 * of wide rows stops at `chunkBytes`. The key comparison `(a, b) > ($1, $2)`
 * runs in SQL, in the key's own types, with the last key passed back as the
 * text PostgreSQL printed; names reach SQL only quoted.
 *
 * The transaction stays open after `read`: the caller emits its watermark
 * in it and calls `commit`, or `rollback`.
 *
 * @example
 * ```ts
 * const chunk = await reader.read(table, snapshot, lastKey);
 * await reader.commit(prefix, mark); // the watermark commits with the chunk's transaction
 * ```
 */
export class ChunkReader {
  private readonly options: ChunkReaderOptions;
  private inTransaction = false;

  constructor(options: ChunkReaderOptions) {
    this.options = options;
  }

  /** The table's primary key and the planner's estimate of its rows; undefined when it does not exist. */
  async describe(table: TableName): Promise<{ keyColumns: readonly string[]; estimate: number } | undefined> {
    const { client, quote } = this.options;
    const oid = await tableOid(client, table);
    if (oid === undefined) return undefined;
    const shape = await readShape(client, oid);
    // The planner scales the last ANALYZE to the table's current size (and guesses without one): cheaper than count(*).
    const { rows } = await client.query(`EXPLAIN (FORMAT JSON) SELECT FROM ONLY ${quote(table.schema)}.${quote(table.name)}`);
    const plan = (rows[0] as { 'QUERY PLAN': [{ Plan: { 'Plan Rows': number } }] })['QUERY PLAN'][0].Plan;
    return { keyColumns: shape.keyColumns, estimate: plan['Plan Rows'] };
  }

  /**
   * Reads the chunk after `lastKey` (null: from the first row), the key
   * being `keyColumns`. Undefined when the table no longer exists.
   */
  async read(
    table: TableName,
    snapshot: { readonly id: string; readonly keyColumns: readonly string[]; readonly lastKey: readonly string[] | null },
  ): Promise<Chunk | undefined> {
    const { lastKey } = snapshot;
    const { client, quote, types, chunkSize, chunkBytes } = this.options;
    const qualified = `${quote(table.schema)}.${quote(table.name)}`;
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    this.inTransaction = true;
    // Locked before the first query fixes the transaction's snapshot, so
    // the rows are read as of after any ALTER that held the table.
    try {
      await client.query(`LOCK TABLE ONLY ${qualified} IN ACCESS SHARE MODE`);
    } catch (error) {
      if ((error as { code?: string }).code === UNDEFINED_TABLE) return undefined;
      throw error;
    }
    const oid = await tableOid(client, table);
    if (oid === undefined) return undefined;
    const shape = await readShape(client, oid);
    await types.resolve(shape.columns.map((column) => column.typeOid));
    for (const column of shape.columns) column.decode = types.decoderFor(column.typeOid) ?? decodeAsText;
    if (shape.keyColumns.length === 0 || !sameColumns(shape.keyColumns, snapshot.keyColumns)) {
      return { shape, reads: [], keys: [], lastKey: null, last: false, keyChanged: true };
    }

    // The 32-bit xid, as the stream's transactions carry it.
    const { rows: marks } = await client.query(
      `SELECT pg_current_xact_id()::xid::text AS txid,
              to_char(transaction_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at`,
    );
    const { txid, at } = marks[0] as { txid: string; at: string };
    const lsn = `snapshot:${snapshot.id}`;
    const key = shape.keyColumns.map(quote).join(', ');
    const after = lastKey === null ? '' : ` WHERE (${key}) > (${lastKey.map((_, i) => `$${i + 1}`).join(', ')})`;
    await client.query(
      `DECLARE ${CURSOR} NO SCROLL CURSOR FOR SELECT ${shape.columns.map((column) => quote(column.name)).join(', ')}
         FROM ONLY ${qualified}${after} ORDER BY ${key} LIMIT ${chunkSize}`,
      lastKey === null ? [] : [...lastKey],
    );

    const reads: ChangeData[] = [];
    const keys: string[] = [];
    let lastRow: (string | null)[] | undefined;
    let bytes = 0;
    let exhausted = false;
    while (reads.length < chunkSize && bytes < chunkBytes) {
      // A small first batch, then as many rows as the byte budget has room for at the size seen so far.
      const room = reads.length === 0 ? FIRST_FETCH_ROWS : Math.floor(((chunkBytes - bytes) * reads.length) / Math.max(1, bytes));
      const batch = Math.max(1, Math.min(FETCH_ROWS, chunkSize - reads.length, room));
      const { rows } = await client.query({ text: `FETCH ${batch} FROM ${CURSOR}`, rowMode: 'array', types: RAW });
      for (const values of rows as (string | null)[][]) {
        const data: Row = {};
        for (let i = 0; i < shape.columns.length; i++) {
          const value = values[i]!;
          const column = shape.columns[i]!;
          if (value === null) data[column.name] = null;
          else {
            bytes += value.length;
            data[column.name] = column.decode(value);
          }
        }
        keys.push(keyText(data, shape.keyColumns)!);
        reads.push({
          timestamp: at,
          schema: table.schema,
          table: table.name,
          action: 'READ',
          id: idOf(data, shape.keyColumns),
          data,
          old: null,
          changes: null,
          unchanged: NONE,
          txid,
          lsn,
          index: 0,
          last: false,
        });
        lastRow = values;
      }
      if (rows.length < batch) {
        exhausted = true;
        break;
      }
    }
    await client.query(`CLOSE ${CURSOR}`);
    return {
      shape,
      reads,
      keys,
      lastKey: lastRow === undefined ? null : shape.keyIndexes.map((index) => lastRow![index]!),
      // A full chunk may be followed by nothing: the next, empty chunk says so.
      last: exhausted && reads.length < chunkSize,
      keyChanged: false,
    };
  }

  /**
   * Emits a watermark in a transaction of its own: transactional, so its
   * commit flushes the WAL and the stream sees it at once (PostgreSQL 15 has
   * no flush option for non-transactional messages).
   */
  async emit(prefix: string, mark: string): Promise<void> {
    await this.options.client.query(`SELECT pg_catalog.pg_logical_emit_message(true, $1, $2)`, [prefix, mark]);
  }

  /** Emits the chunk's high watermark inside its transaction and commits: the mark sits at the commit in the stream. */
  async commit(prefix: string, mark: string): Promise<void> {
    const { client } = this.options;
    await client.query(`SELECT pg_catalog.pg_logical_emit_message(true, $1, $2)`, [prefix, mark]);
    await client.query('COMMIT');
    this.inTransaction = false;
  }

  async rollback(): Promise<void> {
    if (!this.inTransaction) return;
    this.inTransaction = false;
    await this.options.client.query('ROLLBACK');
  }
}

// READ rows never have unchanged columns: they share one frozen empty list.
const NONE = Object.freeze([]) as unknown as string[];

/** The id of a change event: the key's value, an object for a composite key. */
function idOf(data: Row, keyColumns: readonly string[]): unknown {
  if (keyColumns.length === 1) return data[keyColumns[0]!];
  const id: Row = {};
  for (const name of keyColumns) id[name] = data[name];
  return id;
}

function sameColumns(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((name, i) => name === b[i]);
}

async function tableOid(client: Client, table: TableName): Promise<number | undefined> {
  const { rows } = await client.query(
    `SELECT c.oid::int8 AS oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind = 'r'`,
    [table.schema, table.name],
  );
  return rows[0] === undefined ? undefined : Number((rows[0] as { oid: string }).oid);
}

async function readShape(client: Client, oid: number): Promise<TableShape> {
  const [{ rows: columns }, { rows: key }] = await Promise.all([
    client.query(
      `SELECT attname AS name, atttypid::int8 AS type FROM pg_catalog.pg_attribute
        WHERE attrelid = $1::oid AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum`,
      [oid],
    ),
    client.query(
      `SELECT a.attname AS name
         FROM pg_catalog.pg_index i
         JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
        WHERE i.indrelid = $1::oid AND i.indisprimary
        ORDER BY array_position(i.indkey::int2[], a.attnum)`,
      [oid],
    ),
  ]);
  const shapeColumns: ShapeColumn[] = (columns as { name: string; type: string }[]).map((column) => ({
    name: column.name,
    typeOid: Number(column.type),
    decode: decodeAsText,
  }));
  const keyColumns = (key as { name: string }[]).map((row) => row.name);
  return { columns: shapeColumns, keyColumns, keyIndexes: keyColumns.map((name) => shapeColumns.findIndex((column) => column.name === name)) };
}
