/**
 * Where the initial snapshot keeps its progress: a small table in a schema
 * of Busbar's own in the captured database, written in the same transaction
 * that adds a table to the publication and after each chunk is durably
 * delivered. Being in that database, it lives and dies with what it
 * describes (a restored backup brings its own progress), and a capture that
 * restarts, on any machine, continues from the next chunk.
 */
import { randomBytes } from 'node:crypto';
import type { TableName } from '../capture-source.ts';
import type { Queryable } from '../type-catalog.ts';

/** Busbar's schema for replication-mode state. Its tables' own changes are never published as events. */
export const SNAPSHOT_SCHEMA = 'busbar_replication';

const TABLE = `${SNAPSHOT_SCHEMA}.snapshots`;

/**
 * `pending` (waiting its turn), `running`, `done`, or `skipped` (see `reason`).
 *
 * @example
 * ```ts
 * const finished = cdc.status().snapshots.every((s) => s.state === 'done' || s.state === 'skipped');
 * ```
 */
export type SnapshotState = 'pending' | 'running' | 'done' | 'skipped';

/**
 * One table's initial snapshot as `status().snapshots` reports it.
 *
 * @example
 * ```ts
 * for (const { schema, table, state, rowsDone, rowsEstimate } of cdc.status().snapshots) {
 *   console.log(`${schema}.${table}: ${state} ${rowsDone}/${rowsEstimate ?? '?'}`);
 * }
 * ```
 */
export interface TableSnapshotStatus {
  readonly schema: string;
  readonly table: string;
  readonly state: SnapshotState;
  /** Names this snapshot; part of each READ event's id, so a chunk read twice is stored once. */
  readonly snapshotId: string;
  /** Chunks read and delivered. */
  readonly chunks: number;
  /** Rows read so far (rows changed meanwhile are delivered by their stream event instead of a READ). */
  readonly rowsDone: number;
  /** The planner's estimate of the table's rows when the snapshot started; undefined before. */
  readonly rowsEstimate: number | undefined;
  /** Why a snapshot was skipped: no primary key, the table was dropped, a query failed. */
  readonly reason: string | undefined;
  readonly requestedAt: string;
  readonly finishedAt: string | undefined;
}

/** The stored row: the status plus where to continue. */
export interface SnapshotRecord extends TableSnapshotStatus {
  /** The primary key's columns when chunking began; null before. */
  readonly keyColumns: readonly string[] | null;
  /** PostgreSQL's text of each key column of the last row done; null before the first chunk. */
  readonly lastKey: readonly string[] | null;
}

const COLUMNS = `table_schema, table_name, state, snapshot_id, chunks, rows_done::text AS rows_done,
  rows_estimate::text AS rows_estimate, reason, key_columns, last_key,
  to_char(requested_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS requested_at,
  to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS finished_at`;

const RESET = `state = 'pending', reason = NULL, key_columns = NULL, last_key = NULL, chunks = 0, rows_done = 0,
  rows_estimate = NULL, requested_at = now(), updated_at = now(), finished_at = NULL`;

/**
 * The progress of one slot's snapshots. Every method takes the connection to
 * use: registration runs inside the transaction that changes the publication.
 *
 * @example
 * ```ts
 * const progress = new SnapshotProgress('busbar');
 * await progress.register(client, [{ schema: 'public', name: 'orders' }]); // in the publication's transaction
 * const next = await progress.next(pool);
 * ```
 */
export class SnapshotProgress {
  readonly slot: string;

  constructor(slot: string) {
    this.slot = slot;
  }

  /**
   * Creates Busbar's schema and table if missing. Checked first, so a role
   * without CREATE on the database works once they exist.
   */
  async install(client: Queryable): Promise<void> {
    const { rows } = await client.query(`SELECT to_regclass($1) IS NOT NULL AS present`, [TABLE]);
    if ((rows[0] as { present: boolean }).present) return;
    // Two processes installing at once would race on CREATE SCHEMA.
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('busbar-cdc-snapshot-schema'))`);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${SNAPSHOT_SCHEMA}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${TABLE} (
         slot_name text NOT NULL,
         table_schema text NOT NULL,
         table_name text NOT NULL,
         snapshot_id text NOT NULL,
         state text NOT NULL CHECK (state IN ('pending', 'running', 'done', 'skipped')),
         reason text,
         key_columns text[],
         last_key text[],
         chunks integer NOT NULL DEFAULT 0,
         rows_done bigint NOT NULL DEFAULT 0,
         rows_estimate bigint,
         requested_at timestamptz NOT NULL DEFAULT now(),
         updated_at timestamptz NOT NULL DEFAULT now(),
         finished_at timestamptz,
         PRIMARY KEY (slot_name, table_schema, table_name)
       )`,
    );
  }

  /**
   * Asks for a fresh snapshot of `tables` (a partitioned table stands for
   * its leaf partitions, under whose names pgoutput reports changes). A
   * table already recorded starts over with a new snapshot id. Call it in a
   * transaction: `install` takes a transaction-level lock.
   */
  async register(client: Queryable, tables: readonly TableName[]): Promise<void> {
    if (tables.length === 0) return;
    await this.install(client);
    const { rows } = await client.query(
      `WITH wanted AS (
         SELECT c.oid, c.relkind FROM unnest($1::text[], $2::text[]) AS w(schema_name, table_name)
           JOIN pg_catalog.pg_namespace n ON n.nspname = w.schema_name
           JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = w.table_name)
       SELECT DISTINCT n.nspname AS schema, c.relname AS name
         FROM wanted w
         CROSS JOIN LATERAL (SELECT w.oid AS relid WHERE w.relkind <> 'p'
                             UNION ALL SELECT t.relid::oid FROM pg_catalog.pg_partition_tree(w.oid) t WHERE w.relkind = 'p' AND t.isleaf) leaf
         JOIN pg_catalog.pg_class c ON c.oid = leaf.relid
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace`,
      [tables.map((table) => table.schema), tables.map((table) => table.name)],
    );
    await this.upsert(client, rows as TableName[]);
  }

  /** As `register`, for every ordinary table of the database (a publication FOR ALL TABLES). */
  async registerAll(client: Queryable): Promise<void> {
    await this.install(client);
    const { rows } = await client.query(
      `SELECT n.nspname AS schema, c.relname AS name
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema', $1)
          AND n.nspname NOT LIKE 'pg\\_%'`,
      [SNAPSHOT_SCHEMA],
    );
    await this.upsert(client, rows as TableName[]);
  }

  /** Every snapshot of this slot, oldest request first; none when nothing was ever registered. */
  async list(client: Queryable): Promise<SnapshotRecord[]> {
    if (!(await this.installed(client))) return [];
    const { rows } = await client.query(`SELECT ${COLUMNS} FROM ${TABLE} WHERE slot_name = $1 ORDER BY requested_at, table_schema, table_name`, [
      this.slot,
    ]);
    return rows.map(toRecord);
  }

  /** The tables whose snapshot is pending or running, with their primary key's columns now (none without one). */
  async waiting(client: Queryable): Promise<(TableName & { readonly keyColumns: readonly string[] })[]> {
    if (!(await this.installed(client))) return [];
    const { rows } = await client.query(
      `SELECT s.table_schema AS schema, s.table_name AS name,
              ARRAY(SELECT a.attname::text
                      FROM pg_catalog.pg_index i
                      JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                     WHERE i.indrelid = c.oid AND i.indisprimary
                     ORDER BY array_position(i.indkey::int2[], a.attnum)) AS "keyColumns"
         FROM ${TABLE} s
         JOIN pg_catalog.pg_namespace n ON n.nspname = s.table_schema
         JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = s.table_name
        WHERE s.slot_name = $1 AND s.state IN ('pending', 'running')`,
      [this.slot],
    );
    return rows as (TableName & { keyColumns: string[] })[];
  }

  /** The snapshot to work on: one already running first, then the oldest pending one. */
  async next(client: Queryable): Promise<SnapshotRecord | undefined> {
    if (!(await this.installed(client))) return undefined;
    const { rows } = await client.query(
      `SELECT ${COLUMNS} FROM ${TABLE} WHERE slot_name = $1 AND state IN ('pending', 'running')
        ORDER BY state = 'running' DESC, requested_at, table_schema, table_name LIMIT 1`,
      [this.slot],
    );
    return rows[0] === undefined ? undefined : toRecord(rows[0]);
  }

  /**
   * Marks `record` running with its key and estimate; a changed key starts
   * it over from the first row. Undefined when the snapshot was replaced or
   * removed meanwhile.
   */
  start(client: Queryable, record: SnapshotRecord, keyColumns: readonly string[], estimate: number): Promise<SnapshotRecord | undefined> {
    return this.update(
      client,
      record,
      `state = 'running', rows_estimate = $5,
       last_key = CASE WHEN key_columns = $6::text[] THEN last_key END,
       chunks = CASE WHEN key_columns = $6::text[] THEN chunks ELSE 0 END,
       rows_done = CASE WHEN key_columns = $6::text[] THEN rows_done ELSE 0 END,
       key_columns = $6::text[]`,
      [Math.round(estimate), keyColumns],
    );
  }

  /** Records a delivered chunk: the last key done, one more chunk, its rows; `done` after the last. */
  chunkDone(client: Queryable, record: SnapshotRecord, lastKey: readonly string[] | null, rows: number, done: boolean): Promise<SnapshotRecord | undefined> {
    return this.update(
      client,
      record,
      `last_key = COALESCE($5::text[], last_key), chunks = chunks + 1, rows_done = rows_done + $6,
       rows_estimate = GREATEST(rows_estimate, rows_done + $6),
       state = CASE WHEN $7 THEN 'done' ELSE state END, finished_at = CASE WHEN $7 THEN now() END`,
      [lastKey, rows, done],
    );
  }

  /** Gives up on a table's snapshot, saying why (`cdc.snapshot(table)` asks again). */
  skip(client: Queryable, record: SnapshotRecord, reason: string): Promise<SnapshotRecord | undefined> {
    return this.update(client, record, `state = 'skipped', reason = $5, finished_at = now()`, [reason]);
  }

  /** Forgets a table (it left the capture): capturing it again snapshots it again. */
  async forget(client: Queryable, table: TableName): Promise<void> {
    if (!(await this.installed(client))) return;
    await client.query(`DELETE FROM ${TABLE} WHERE slot_name = $1 AND table_schema = $2 AND table_name = $3`, [
      this.slot,
      table.schema,
      table.name,
    ]);
  }

  /** Forgets this slot's snapshots, and Busbar's schema once no slot has any. */
  async forgetSlot(client: Queryable): Promise<void> {
    if (!(await this.installed(client))) return;
    await client.query(`DELETE FROM ${TABLE} WHERE slot_name = $1`, [this.slot]);
    await client.query(
      `DO $$ BEGIN
         PERFORM pg_advisory_xact_lock(hashtext('busbar-cdc-snapshot-schema'));
         IF NOT EXISTS (SELECT FROM ${TABLE}) THEN DROP SCHEMA ${SNAPSHOT_SCHEMA} CASCADE; END IF;
       END $$`,
    );
  }

  private async installed(client: Queryable): Promise<boolean> {
    const { rows } = await client.query(`SELECT to_regclass($1) IS NOT NULL AS present`, [TABLE]);
    return (rows[0] as { present: boolean }).present;
  }

  private async upsert(client: Queryable, tables: readonly TableName[]): Promise<void> {
    if (tables.length === 0) return;
    await client.query(
      `INSERT INTO ${TABLE} (slot_name, table_schema, table_name, snapshot_id, state)
       SELECT $1, t.schema_name, t.table_name, t.snapshot_id, 'pending'
         FROM unnest($2::text[], $3::text[], $4::text[]) AS t(schema_name, table_name, snapshot_id)
       ON CONFLICT (slot_name, table_schema, table_name) DO UPDATE SET snapshot_id = EXCLUDED.snapshot_id, ${RESET}`,
      [this.slot, tables.map((table) => table.schema), tables.map((table) => table.name), tables.map(() => newSnapshotId())],
    );
  }

  /** An UPDATE of the record's row that holds only while its snapshot id is unchanged. */
  private async update(client: Queryable, record: SnapshotRecord, assignments: string, values: unknown[]): Promise<SnapshotRecord | undefined> {
    const { rows } = await client.query(
      `UPDATE ${TABLE} SET ${assignments}, updated_at = now()
        WHERE slot_name = $1 AND table_schema = $2 AND table_name = $3 AND snapshot_id = $4
        RETURNING ${COLUMNS}`,
      [this.slot, record.schema, record.table, record.snapshotId, ...values],
    );
    return rows[0] === undefined ? undefined : toRecord(rows[0]);
  }
}

/** 16 hex digits: unique enough per table and slot, short in every READ event's id. */
function newSnapshotId(): string {
  return randomBytes(8).toString('hex');
}

function toRecord(row: Record<string, any>): SnapshotRecord {
  return {
    schema: row.table_schema,
    table: row.table_name,
    state: row.state,
    snapshotId: row.snapshot_id,
    chunks: row.chunks,
    rowsDone: Number(row.rows_done),
    rowsEstimate: row.rows_estimate === null ? undefined : Number(row.rows_estimate),
    reason: row.reason ?? undefined,
    requestedAt: row.requested_at,
    finishedAt: row.finished_at ?? undefined,
    keyColumns: row.key_columns,
    lastKey: row.last_key,
  };
}
