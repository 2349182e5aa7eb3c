import type { Queryable, TypeCatalog } from '../type-catalog.ts';
import { SNAPSHOT_SCHEMA } from '../snapshot/snapshot-progress.ts';
import { decodeAsText, type ValueDecoder } from '../values.ts';
import { protocolError, type RelationMessage } from './pgoutput-decoder.ts';

export interface CapturedColumn {
  readonly name: string;
  readonly decode: ValueDecoder;
  /** Part of the replica identity: sent in a DELETE's or key-changing UPDATE's 'K' tuple. */
  readonly isKey: boolean;
}

/** A table as the stream describes it now, with what mapping its rows needs. */
export interface CapturedRelation {
  readonly schema: string;
  readonly table: string;
  readonly columns: readonly CapturedColumn[];
  /** Indexes (into `columns`) of the primary key's columns, in key order; empty without one. */
  readonly primaryKey: readonly number[];
  /** Busbar's own bookkeeping (snapshot progress), published by a FOR ALL TABLES publication: never an event. */
  readonly internal?: boolean;
}

/**
 * The relations a replication session has been told about. pgoutput sends a
 * Relation message before a table's first change in a session and again
 * after its definition changes (added, dropped or retyped columns), so the
 * newest message replaces the cached entry. The primary key is not in the
 * message (with REPLICA IDENTITY FULL every column is flagged as key): it
 * comes from the catalog, like the decoders of types the built-in table lacks.
 *
 * @example
 * ```ts
 * await relations.register(relationMessage);
 * relations.get(relationMessage.relationId).primaryKey; // [0]
 * ```
 */
export class RelationCache {
  private readonly relations = new Map<number, CapturedRelation>();
  private readonly warned = new Set<string>();
  private readonly database: Queryable;
  private readonly types: TypeCatalog;
  private readonly onWarning: (message: string) => void;

  constructor(database: Queryable, types: TypeCatalog, onWarning: (message: string) => void) {
    this.database = database;
    this.types = types;
    this.onWarning = onWarning;
  }

  get(relationId: number): CapturedRelation {
    const relation = this.relations.get(relationId);
    if (relation === undefined) throw protocolError(`a change refers to relation ${relationId} before its Relation message`);
    return relation;
  }

  /**
   * Looks up the relation's key and types. `xid` is the transaction the
   * message came in: PostgreSQL can send a commit before other sessions see
   * it, so a table created (or given its key) in that same transaction could
   * look keyless to the lookup. The lookup waits until `xid` is visible.
   */
  async register(message: RelationMessage, xid?: string): Promise<void> {
    if (xid !== undefined) await this.untilVisible(xid);
    const [, keyResult] = await Promise.all([
      this.types.resolve(message.columns.map((column) => column.typeOid)),
      this.database.query(
        `SELECT a.attname
           FROM pg_catalog.pg_index i
           JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
          WHERE i.indrelid = $1::oid AND i.indisprimary
          ORDER BY array_position(i.indkey::int2[], a.attnum)`,
        [message.relationId],
      ),
    ]);
    const columns = message.columns.map((column) => ({
      name: column.name,
      decode: this.types.decoderFor(column.typeOid) ?? decodeAsText,
      isKey: column.isKey,
    }));
    const primaryKey = (keyResult.rows as { attname: string }[])
      .map((row) => columns.findIndex((column) => column.name === row.attname))
      .filter((index) => index >= 0);
    const name = `${message.schema}.${message.table}`;
    if (primaryKey.length === 0 && message.schema !== SNAPSHOT_SCHEMA && !this.warned.has(name)) {
      this.warned.add(name);
      this.onWarning(`table ${JSON.stringify(name)} has no primary key: its change events carry id null`);
    }
    const internal = message.schema === SNAPSHOT_SCHEMA;
    this.relations.set(message.relationId, { schema: message.schema, table: message.table, columns, primaryKey, internal });
  }

  /** Resolves once a new snapshot sees the (32-bit) transaction id as completed. */
  private async untilVisible(xid: string): Promise<void> {
    for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
      const { rows } = await this.database.query(VISIBLE_SQL, [xid]);
      if ((rows[0] as { visible: boolean }).visible) return;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}

// pgoutput gives 32-bit xids; pg_visible_in_snapshot takes xid8. The epoch is
// the snapshot's, or the one before when the xid is from before a wraparound.
const VISIBLE_SQL = `
  SELECT pg_catalog.pg_visible_in_snapshot(
           (CASE WHEN (e.epoch | $1::bigint) > e.xmax AND e.epoch > 0 THEN (e.epoch - 4294967296) | $1::bigint
                 ELSE e.epoch | $1::bigint END)::text::xid8,
           e.snapshot) AS visible
    FROM (SELECT s AS snapshot,
                 pg_catalog.pg_snapshot_xmax(s)::text::bigint AS xmax,
                 (pg_catalog.pg_snapshot_xmax(s)::text::bigint >> 32) << 32 AS epoch
            FROM pg_catalog.pg_current_snapshot() AS s) AS e`;
