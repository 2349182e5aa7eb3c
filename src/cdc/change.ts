import { type BusbarEvent, createEvent } from '../core/event.ts';
import { changeTopic } from './topic-name.ts';

/** What happened to a row. `READ` is a row of the initial snapshot. */
export type ChangeAction = 'INSERT' | 'UPDATE' | 'DELETE' | 'TRUNCATE' | 'READ';

/** A row as JSON: column name → value, mapped as `docs/cdc.md` lists (numeric as exact strings…). */
export type Row = Record<string, unknown>;

/** One column an UPDATE changed. */
export interface ColumnChange {
  column: string;
  old: unknown;
  new: unknown;
}

/**
 * The `data` of a change event: the seed's payload (`timestamp`, `schema`,
 * `table`, `action`, `id`, `data`, `changes`) plus where it sits in its
 * transaction and in the WAL, so consumers can reconcile and dedupe.
 */
export interface ChangeData {
  /** Commit time of the transaction, RFC 3339 with microseconds. */
  timestamp: string;
  schema: string;
  table: string;
  action: ChangeAction;
  /**
   * The primary key: the value of a one-column key, an object for a
   * composite key; null for a table without one, and for TRUNCATE.
   */
  id: unknown;
  /** The row after the change (INSERT, UPDATE, READ), or as it was (DELETE); null for TRUNCATE. */
  data: Row | null;
  /** The row before the change where it is known (UPDATE, DELETE); null otherwise. */
  old: Row | null;
  /** For UPDATE: each column whose value differs, with both values; null otherwise. */
  changes: ColumnChange[] | null;
  /**
   * Columns whose value the database did not send (an unchanged TOASTed
   * value without `REPLICA IDENTITY FULL`): they are absent from `data`,
   * never reported as undefined or null. Empty when every value is known.
   */
  unchanged: string[];
  /** The transaction id (xid), as a decimal string. */
  txid: string;
  /**
   * Where the transaction committed: the commit LSN (`16/B374D848`) in
   * replication mode, the change table's commit sequence (`t:1234`) in
   * trigger mode, `snapshot:<id>` for READ rows.
   */
  lsn: string;
  /** Position of this change in its transaction, from 0. */
  index: number;
  /** True for the transaction's last change. */
  last: boolean;
}

/** A committed transaction's changes, in order, as a capture source hands them on. */
export interface CapturedTransaction {
  readonly changes: readonly ChangeData[];
  /**
   * Opaque to the sink: what the source records as done once the
   * transaction is durably accepted (an LSN, a commit sequence, a snapshot
   * chunk).
   */
  readonly position: unknown;
}

/** Where an event came from, fixed per capture. */
export interface ChangeOrigin {
  /** CloudEvents `source`, naming the database: `postgresql://host:port/db`. */
  readonly source: string;
  /**
   * Prefix of every event id, unique to the database (its system identifier
   * and name), so a redelivered change gets the same id and the store keeps
   * it once, while two databases never collide.
   */
  readonly idPrefix: string;
}

/**
 * The CloudEvent for a change: type `cdc.<schema>.<table>.<action>`,
 * `subject` the primary key, `time` the commit time, `partitionkey` the
 * table and key (so a subscription handles one row's changes in order),
 * `transactionid` the xid, and an id derived from where the change committed:
 * the same change always gets the same id. A READ row of the initial
 * snapshot is named by its snapshot and key instead.
 *
 * @example
 * ```ts
 * const event = changeEvent(change, { source: 'postgresql://db:5432/shop', idPrefix: 'pg-7714-shop' });
 * event.type; // 'cdc.public.person.insert'
 * event.id;   // 'pg-7714-shop:16/B374D848:0'; a READ: 'pg-7714-shop:snapshot:9f2c…:42'
 * ```
 */
export function changeEvent(change: ChangeData, origin: ChangeOrigin): BusbarEvent<ChangeData> {
  const subject = subjectOf(change.id);
  // A READ row is named by its snapshot and key, not by its place in a
  // chunk: a chunk read again after a crash gives its rows the same ids.
  const place = change.action === 'READ' && subject !== undefined ? subject : change.index;
  return createEvent(changeTopic(change.schema, change.table, change.action), change, {
    id: `${origin.idPrefix}:${change.lsn}:${place}`,
    source: origin.source,
    time: change.timestamp,
    ...(subject === undefined ? {} : { subject, key: `${change.schema}.${change.table}:${subject}` }),
    transactionid: change.txid,
  });
}

/**
 * The key as a string: itself for a one-column key, JSON for a composite
 * one, and `""` for an empty text key (a CloudEvents subject may not be
 * empty).
 *
 * @example
 * ```ts
 * subjectOf({ order_id: 1, line_no: 2 }); // '{"order_id":1,"line_no":2}'
 * subjectOf('');                          // '""'
 * ```
 */
export function subjectOf(id: unknown): string | undefined {
  if (id === null || id === undefined) return undefined;
  if (typeof id === 'object') return JSON.stringify(id);
  return id === '' ? '""' : String(id);
}
