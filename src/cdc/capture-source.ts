import type { CapturedTransaction } from './change.ts';
import type { TableSnapshotStatus } from './snapshot/snapshot-progress.ts';

/** A table to capture: `name` or `schema.name` (quoted parts allowed), or the object form. */
export type TableSpec =
  | string
  | {
      /** Schema, default `public`. */
      schema?: string;
      name: string;
      /**
       * Replication mode sets `REPLICA IDENTITY FULL` so UPDATE and DELETE
       * carry the whole old row; false keeps the table's own setting (then
       * unchanged TOASTed columns are listed in `unchanged`). Default true.
       */
      replicaIdentityFull?: boolean;
    };

/** A table resolved against the database: real schema and name, never SQL text. */
export interface TableName {
  readonly schema: string;
  readonly name: string;
}

/**
 * Where a capture source hands committed transactions. `deliver` resolves
 * once every output has durably accepted the transaction (the bus's store
 * committed it, handlers returned); only then may the source record the
 * transaction's position as done (confirm the LSN, advance the checkpoint).
 * Sources call it in commit order and may keep several in flight; the sink
 * resolves them in the order it was called.
 */
export interface ChangeSink {
  deliver(transaction: CapturedTransaction): Promise<void>;
}

/** Facts the watchdog reports about a source's health. */
export interface SourceHealth {
  /** Bytes of WAL the source has not confirmed (replication), or change rows waiting (trigger). */
  readonly lagBytes: number | undefined;
  /** Seconds since the oldest unconfirmed change committed; 0 when caught up. */
  readonly lagSeconds: number | undefined;
  /** `reserved`, `extended`, `unreserved`, `lost` for a slot; undefined in trigger mode. */
  readonly walStatus: string | undefined;
  /** Bytes of WAL the server keeps for this source. */
  readonly retainedBytes: number | undefined;
  /** Problems worth a warning: a forgotten slot, a lost slot, a table without a key… */
  readonly warnings: readonly string[];
  /**
   * The position the database records as done: the slot's
   * `confirmed_flush_lsn` (replication), the reader's checkpoint (trigger).
   */
  readonly confirmedPosition?: string | undefined;
}

/**
 * One capture mode. The facade (`createPostgresCdc`) owns retries, the
 * watchdog and handlers; a source owns its SQL and its position.
 */
export interface CaptureSource {
  readonly mode: 'replication' | 'trigger';
  /** Installs what capturing `tables` needs (publication, triggers…); idempotent. */
  ensureFor(tables: readonly TableName[], options: { replicaIdentityFull: ReadonlyMap<string, boolean> }): Promise<void>;
  /** Captures every table in the database, now and created later where the mode can. */
  ensureForAll(): Promise<void>;
  /** Stops capturing `table` and removes what was installed for it. */
  removeFor(table: TableName): Promise<void>;
  /**
   * Connects, resumes from its recorded position and hands transactions to
   * `sink` until `signal` aborts (resolves) or the link fails (rejects, and
   * the facade retries). Calls `connected` once streaming has begun.
   */
  stream(sink: ChangeSink, signal: AbortSignal, connected: () => void): Promise<void>;
  /** Queries the health facts on the watchdog's own connection. */
  health(): Promise<SourceHealth>;
  /** Drops the slot / change table: capture restarts from scratch afterwards. */
  drop(): Promise<void>;
  close(): Promise<void>;
  /** Delivers a captured table's existing rows again, as READ changes (modes that snapshot). */
  snapshot?(table: TableName): Promise<void>;
  /** Each table's initial snapshot as last known (modes that snapshot). */
  snapshots?(): readonly TableSnapshotStatus[];
}
