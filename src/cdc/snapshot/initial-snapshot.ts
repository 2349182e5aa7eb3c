import type { Client, Pool, PoolClient } from 'pg';
import { BusbarError, toError } from '../../core/errors.ts';
import type { TableName } from '../capture-source.ts';
import { tableKey } from '../table-spec.ts';
import { SnapshotProgress, type TableSnapshotStatus } from './snapshot-progress.ts';
import { SnapshotRunner } from './snapshot-runner.ts';
import { SnapshotWindow } from './snapshot-window.ts';

export interface InitialSnapshotOptions {
  readonly slot: string;
  readonly publication: string;
  /** `initial`: tables joining the publication are snapshotted; `never`: only on request. */
  readonly mode: 'initial' | 'never';
  readonly chunkSize: number;
  /** Text bytes per chunk at most. */
  readonly chunkBytes: number;
  /** Opens a connection for chunk reads, with the stream's output settings. */
  readonly connect: () => Promise<Client>;
  /** Ends such a connection at once. */
  readonly disconnect: (client: Client) => void;
  readonly quote: (identifier: string) => string;
  readonly onWarning: (message: string) => void;
}

/** The snapshot's part of one replication session: the window the session feeds, and the runner beside it. */
export interface SnapshotSession {
  readonly window: SnapshotWindow;
  /** Starts reading chunks once the stream flows; `onFailure` hears a failure that is not a table's. */
  start(onFailure: (error: Error) => void): void;
  /** The session ended: stops the runner, fails what waits on the stream. */
  end(): void;
}

/**
 * Replication mode's initial snapshot, as the source sees it: registers the
 * tables that join the publication (in the transaction that adds them),
 * answers requests for a new snapshot, keeps each table's status for
 * `status()`, and for every streaming session opens a window (tracking the
 * tables that wait from the session's first message) and runs the chunk
 * reader beside it. The algorithm is in `snapshot-window.ts`; docs/cdc.md,
 * "The initial snapshot", says what it guarantees.
 *
 * @example
 * ```ts
 * await ensurePublicationFor(setup, tables, identities, snapshots.onAdded());
 * const session = await snapshots.openSession(pool); // before START_REPLICATION
 * runSession({ …, watermarks: session.window, onConnected: () => session.start(fail) });
 * ```
 */
export class InitialSnapshot {
  private readonly options: InitialSnapshotOptions;
  private readonly progress: SnapshotProgress;
  /** Each table's snapshot as last read or recorded: `status()` is synchronous. */
  private readonly states = new Map<string, TableSnapshotStatus>();
  private runner: SnapshotRunner | undefined;

  constructor(options: InitialSnapshotOptions) {
    this.options = options;
    this.progress = new SnapshotProgress(options.slot);
  }

  /** The hook that registers tables joining the publication, when new tables are snapshotted. */
  onAdded(): ((client: PoolClient, added: readonly TableName[]) => Promise<void>) | undefined {
    return this.options.mode === 'initial' ? (client, added) => this.progress.register(client, added) : undefined;
  }

  /** The hook that registers every table when the publication becomes FOR ALL TABLES. */
  onAllTables(): ((client: PoolClient) => Promise<void>) | undefined {
    return this.options.mode === 'initial' ? (client) => this.progress.registerAll(client) : undefined;
  }

  /** Reads the snapshots back after some were registered, and tells a running session there is work. */
  async changed(pool: Pool): Promise<void> {
    if (this.options.mode === 'never') return;
    for (const record of await this.progress.list(pool)) this.record(record);
    this.runner?.wake();
  }

  /**
   * A new snapshot of a captured table, under a new id. Fails with
   * `BUSBAR_ERR_INVALID_ARGUMENT` for a table the publication does not
   * hold: without its stream changes, a snapshot could not be kept consistent.
   */
  async request(pool: Pool, table: TableName): Promise<void> {
    const { rows } = await pool.query(
      `SELECT EXISTS (SELECT FROM pg_catalog.pg_publication_tables p
                       WHERE p.pubname = $1 AND ((p.schemaname = $2 AND p.tablename = $3)
                          OR (p.schemaname, p.tablename) IN (SELECT n.nspname, c.relname
                                FROM pg_catalog.pg_partition_tree(to_regclass(quote_ident($2) || '.' || quote_ident($3))) t
                                JOIN pg_catalog.pg_class c ON c.oid = t.relid
                                JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace))) AS captured`,
      [this.options.publication, table.schema, table.name],
    );
    if ((rows[0] as { captured: boolean }).captured !== true) {
      throw new BusbarError(
        'BUSBAR_ERR_INVALID_ARGUMENT',
        `table ${JSON.stringify(`${table.schema}.${table.name}`)} is not captured: ensureCdcFor it first (which snapshots it)`,
        { details: { ...table } },
      );
    }
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await this.progress.register(client, [table]);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
    for (const record of await this.progress.list(pool)) this.record(record);
    this.runner?.wake();
  }

  /** The table left the capture: capturing it again snapshots it again. */
  async forget(pool: Pool, table: TableName): Promise<void> {
    await this.progress.forget(pool, table);
    this.states.delete(tableKey(table));
  }

  /** The slot is dropped: every snapshot of it goes, and Busbar's schema with the last. */
  async forgetSlot(pool: Pool): Promise<void> {
    await this.progress.forgetSlot(pool);
    this.states.clear();
  }

  statuses(): readonly TableSnapshotStatus[] {
    return [...this.states.values()];
  }

  /** Call before the session reads its first message: the tables waiting are tracked from there. */
  async openSession(pool: Pool): Promise<SnapshotSession> {
    const window = new SnapshotWindow();
    window.trackFromStart(await this.progress.waiting(pool));
    const stopped = new AbortController();
    return {
      window,
      start: (onFailure) => {
        // Not awaited at the end: on a frozen server its pending query may
        // never answer; once aborted it does no more work.
        this.run(pool, window, stopped.signal).catch((error: unknown) => {
          if (!stopped.signal.aborted) onFailure(toError(error));
        });
      },
      end: () => {
        window.close(new BusbarError('BUSBAR_ERR_CLOSED', 'the replication session ended'));
        stopped.abort();
      },
    };
  }

  private async run(pool: Pool, window: SnapshotWindow, signal: AbortSignal): Promise<void> {
    const { connect, disconnect, quote, chunkSize, chunkBytes, onWarning } = this.options;
    const runner = new SnapshotRunner({
      pool,
      connect,
      disconnect,
      quote,
      progress: this.progress,
      window,
      chunkSize,
      chunkBytes,
      onWarning,
      onStatus: (status) => this.record(status),
    });
    this.runner = runner;
    try {
      await runner.run(signal);
    } finally {
      if (this.runner === runner) this.runner = undefined;
    }
  }

  private record(status: TableSnapshotStatus): void {
    // Where to continue is the runner's business, not the status's.
    const { keyColumns: _key, lastKey: _last, ...visible } = status as TableSnapshotStatus & { keyColumns?: unknown; lastKey?: unknown };
    this.states.set(tableKey({ schema: status.schema, name: status.table }), visible);
  }
}
