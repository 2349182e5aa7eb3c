import type { Client } from 'pg';
import { toError } from '../../core/errors.ts';
import type { TableName } from '../capture-source.ts';
import { type Queryable, TypeCatalog } from '../type-catalog.ts';
import { ChunkReader } from './chunk-reader.ts';
import type { SnapshotProgress, SnapshotRecord, TableSnapshotStatus } from './snapshot-progress.ts';
import { type SnapshotWindow, WATERMARK_PREFIX } from './snapshot-window.ts';

export interface SnapshotRunnerOptions {
  /** For looking up work while idle. */
  readonly pool: Queryable;
  /**
   * Opens a connection of the runner's own, with the stream's output
   * settings (the same text for the same decoders). Opened when there is
   * work, ended when there is none.
   */
  readonly connect: () => Promise<Client>;
  /** Ends a connection `connect` opened, at once (a hung one included). */
  readonly disconnect: (client: Client) => void;
  readonly quote: (identifier: string) => string;
  readonly progress: SnapshotProgress;
  /** The streaming session's window: the runner's chunks are released by the stream. */
  readonly window: SnapshotWindow;
  readonly chunkSize: number;
  readonly chunkBytes: number;
  readonly onWarning: (message: string) => void;
  /** Each table's progress as it changes. */
  readonly onStatus: (status: TableSnapshotStatus) => void;
}

/** SQLSTATEs that mean the table changed under the snapshot (dropped, a column gone, retyped): look at it again. */
const DEFINITION_CHANGED = new Set(['42P01', '42703', '42804', '42883', '22P02']);
/** Times a table's definition may change under its snapshot before the snapshot gives up. */
const MAX_RESTARTS = 5;

type TableOutcome = 'finished' | 'restart';

/**
 * The query side of the initial snapshot, one per streaming session: takes
 * the oldest pending (or the running) table snapshot, tracks the table from
 * a start watermark the stream has reached, then reads it chunk by chunk,
 * each chunk in a transaction that commits with its high watermark. The
 * stream hands the chunk's rows on at that watermark; once they are durably
 * delivered, the chunk is recorded as done, so a restart continues with the
 * next one. It sleeps when nothing is pending; `wake()` says there is.
 *
 * @example
 * ```ts
 * const runner = new SnapshotRunner({ pool, connect, disconnect, quote, progress, window, chunkSize: 2000, chunkBytes: 32 << 20, onWarning, onStatus });
 * await runner.run(session.signal);
 * ```
 */
export class SnapshotRunner {
  private readonly options: SnapshotRunnerOptions;
  private connection: { readonly client: Client; readonly reader: ChunkReader } | undefined;
  private wakeUp: (() => void) | undefined;
  private woken = false;

  constructor(options: SnapshotRunnerOptions) {
    this.options = options;
  }

  /** Something was registered or requested: look for work again. */
  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  /** Works until `signal` aborts (resolves) or a query fails for a reason that is not the table's (rejects). */
  async run(signal: AbortSignal): Promise<void> {
    const { pool, progress, onStatus } = this.options;
    const release = (): void => this.release();
    signal.addEventListener('abort', release, { once: true });
    try {
      for (const record of await progress.list(pool)) onStatus(record);
      while (!signal.aborted) {
        this.woken = false;
        const record = await progress.next(pool);
        if (record === undefined) {
          this.release();
          await this.sleep(signal);
          continue;
        }
        await this.connect(signal);
        if (signal.aborted) break;
        await this.snapshotTable(record, signal);
      }
    } finally {
      signal.removeEventListener('abort', release);
      this.release();
    }
  }

  private async connect(signal: AbortSignal): Promise<void> {
    if (this.connection !== undefined) return;
    const client = await this.options.connect();
    if (signal.aborted) {
      this.options.disconnect(client);
      return;
    }
    const { quote, chunkSize, chunkBytes } = this.options;
    this.connection = { client, reader: new ChunkReader({ client, quote, types: new TypeCatalog(client), chunkSize, chunkBytes }) };
  }

  private release(): void {
    const connection = this.connection;
    this.connection = undefined;
    if (connection !== undefined) this.options.disconnect(connection.client);
  }

  private get client(): Client {
    if (this.connection === undefined) throw new Error('the snapshot connection is closed');
    return this.connection.client;
  }

  private get reader(): ChunkReader {
    if (this.connection === undefined) throw new Error('the snapshot connection is closed');
    return this.connection.reader;
  }

  private async snapshotTable(record: SnapshotRecord, signal: AbortSignal): Promise<void> {
    const { progress, onStatus, onWarning } = this.options;
    const client = this.client;
    const table: TableName = { schema: record.schema, name: record.table };
    let current = record;
    for (let restarts = 0; !signal.aborted; restarts++) {
      const described = restarts > MAX_RESTARTS ? undefined : await this.reader.describe(table);
      let reason: string | undefined;
      if (restarts > MAX_RESTARTS) reason = 'its definition kept changing while it was read';
      else if (described === undefined) reason = 'the table no longer exists';
      else if (described.keyColumns.length === 0) {
        reason = 'it has no primary key (add one, then ask for a snapshot again)';
        onWarning(`table ${display(table)} has no primary key: its existing rows are not snapshotted, only its changes are captured`);
      }
      if (reason !== undefined) {
        const skipped = await progress.skip(client, current, reason);
        if (skipped !== undefined) onStatus(skipped);
        return;
      }
      const started = await progress.start(client, current, described!.keyColumns, described!.estimate);
      if (started === undefined) return; // asked for again, or removed, meanwhile
      current = started;
      onStatus(current);
      let outcome: TableOutcome;
      try {
        outcome = await this.readChunks(table, current, signal, (next) => (current = next));
      } catch (error) {
        await this.connection?.reader.rollback().catch(() => {});
        const code = (error as { code?: string }).code;
        if (code !== undefined && DEFINITION_CHANGED.has(code)) continue;
        if (!tableProblem(code)) throw error;
        const skipped = await progress.skip(client, current, `a query failed: ${toError(error).message}`);
        if (skipped !== undefined) onStatus(skipped);
        return;
      } finally {
        this.options.window.untrack();
      }
      if (outcome === 'finished') return;
    }
  }

  /** Tracks the table and reads its chunks until the last, or until it must be looked at again. */
  private async readChunks(
    table: TableName,
    record: SnapshotRecord,
    signal: AbortSignal,
    recorded: (record: SnapshotRecord) => void,
  ): Promise<TableOutcome> {
    const { progress, window, onStatus } = this.options;
    const client = this.client;
    const keyColumns = record.keyColumns!;
    let current = record;
    while (!signal.aborted) {
      const tracking = window.track(table, keyColumns);
      if (tracking.mark !== undefined) await this.reader.emit(WATERMARK_PREFIX, tracking.mark);
      await tracking.reached;
      for (;;) {
        const chunk = await this.reader.read(table, { id: current.snapshotId, keyColumns, lastKey: current.lastKey });
        if (chunk === undefined || chunk.keyChanged) {
          await this.reader.rollback();
          return 'restart';
        }
        const attached = window.attach(chunk.reads, chunk.keys, keyColumns);
        if (attached === undefined) {
          await this.reader.rollback();
          break; // tracking lost keys: track from a new mark and read this chunk again
        }
        await this.reader.commit(WATERMARK_PREFIX, attached.mark);
        if ((await attached.outcome) === 'again') continue;
        const next = await progress.chunkDone(client, current, chunk.lastKey, chunk.reads.length, chunk.last);
        if (next === undefined) return 'finished'; // asked for again, or removed, meanwhile
        current = next;
        recorded(current);
        onStatus(current);
        if (chunk.last) return 'finished';
      }
    }
    return 'finished';
  }

  private sleep(signal: AbortSignal): Promise<void> {
    if (this.woken || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.wakeUp = undefined;
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.wakeUp = done;
      signal.addEventListener('abort', done, { once: true });
    });
  }
}

/**
 * An error of this table rather than of the connection: a missing right, a
 * value that will not compare. Connection losses, shutdowns and resource
 * limits end the session instead, so capture reconnects and tries again.
 */
function tableProblem(code: string | undefined): boolean {
  if (code === undefined) return false;
  return code.startsWith('42') || code.startsWith('22') || code.startsWith('0A');
}

function display(table: TableName): string {
  return JSON.stringify(`${table.schema}.${table.name}`);
}
