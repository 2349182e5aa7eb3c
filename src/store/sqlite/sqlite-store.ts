import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { BusbarError } from '../../core/errors.ts';
import type { BusbarEvent } from '../../core/event.ts';
import type {
  AppendOptions,
  LoggedEvent,
  ReadAllOptions,
  ReadAllPage,
  Recipients,
  StoredDeadLetter,
} from '../../core/event-log.ts';
import { decodeEvent, encodeEvent } from '../codec.ts';
import type {
  AppendToStreamOptions,
  AppendToStreamResult,
  EventStore,
  ReadStreamOptions,
  StreamMetadata,
} from '../event-store.ts';
import { assertExpectedVersion, assertStreamId, checkExpectedVersion } from '../expected-version.ts';
import { assertName, nonNegativeInteger, readAllOptions, readStreamOptions, streamMetadata } from '../read-options.ts';
import { isPastMaxAge, retentionBounds } from '../retention.ts';
import { TailWaiters } from '../tail-waiters.ts';
import { topicFilter } from '../topic-filter.ts';
import { sqlite } from './driver.ts';
import { migrate } from './schema.ts';
import { WriteQueue } from './write-queue.ts';

export interface SqliteStoreOptions {
  /** The database file, created if missing; `:memory:` for a throwaway one. Default `busbar.db`. */
  path?: string;
  /**
   * `full` (default): an acknowledged append survives power loss (WAL synced
   * on every commit). `normal`: it survives a crash of the process but the
   * last commits may be lost on power loss; commits are cheaper.
   */
  synchronous?: 'full' | 'normal';
}

const COLUMNS = 'position, type, stream, stream_version, recipients, event, recorded_at';
type Row = [number, string, string | null, number | null, string | null, string, number];

/**
 * The embedded default: one SQLite file through Node's built-in `node:sqlite`,
 * in WAL mode. Appends from concurrent publishers are group-committed: they
 * share a transaction and one fsync, and each resolves once that commit is on
 * disk.
 *
 * @example
 * ```ts
 * const store = createSqliteStore({ path: 'events.db' });
 * const bus = createBus({ store });
 * ```
 */
export function createSqliteStore(options: SqliteStoreOptions = {}): SqliteStore {
  return new SqliteStore(options);
}

/** The handle `transaction()` gives its callback: the store's own database, in the transaction. */
export type SqliteTransaction = DatabaseSync;

export class SqliteStore implements EventStore<SqliteTransaction> {
  readonly path: string;
  private readonly database: DatabaseSync;
  private readonly writes: WriteQueue;
  private readonly tail = new TailWaiters();
  private readonly statements: ReturnType<typeof prepare>;
  // Streams with a maxAge, so reads can hide what the next cleanup deletes.
  private readonly maxAges = new Map<string, number>();
  private lastRecordedAt = 0;
  // The head inside a group transaction: read once at BEGIN, written once
  // before COMMIT. A write updates it only once it succeeded, so a write
  // rolled back to its savepoint leaves it as it was.
  private groupHead = 0;
  private groupStartHead = 0;
  private closed = false;

  constructor(options: SqliteStoreOptions) {
    this.path = options.path ?? 'busbar.db';
    const synchronous = options.synchronous ?? 'full';
    if (synchronous !== 'full' && synchronous !== 'normal') {
      throw new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', `synchronous must be "full" or "normal", got ${JSON.stringify(synchronous)}`);
    }
    try {
      this.database = new sqlite.DatabaseSync(this.path);
      this.database.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = ${synchronous.toUpperCase()}; PRAGMA busy_timeout = 5000;`);
    } catch (error) {
      throw new BusbarError('BUSBAR_ERR_STORE_UNAVAILABLE', `cannot open SQLite database ${this.path}: ${(error as Error).message}`, { cause: error });
    }
    try {
      migrate(this.database, this.path);
    } catch (error) {
      this.database.close();
      throw error;
    }
    this.statements = prepare(this.database);
    for (const { stream, metadata } of this.statements.streamsWithMetadata.all() as { stream: string; metadata: string }[]) {
      const { maxAge } = JSON.parse(metadata) as StreamMetadata;
      if (maxAge !== undefined) this.maxAges.set(stream, maxAge);
    }
    this.writes = new WriteQueue(this.database, {
      begin: () => {
        this.groupHead = this.groupStartHead = this.currentHead();
      },
      beforeCommit: () => {
        if (this.groupHead !== this.groupStartHead) this.statements.saveHead.run(this.groupHead);
      },
      committed: () => this.tail.wake(this.currentHead()),
    });
  }

  /** Transactions committed so far (each may hold many appends). */
  get commits(): number {
    return this.writes.commits;
  }

  async append(events: readonly BusbarEvent[], options: AppendOptions = {}): Promise<readonly number[]> {
    this.assertOpen();
    const recipients = options.recipients === undefined ? null : JSON.stringify(options.recipients);
    return this.writes.write(() => {
      let head = this.groupHead;
      const recordedAt = this.recordingTime();
      const positions = events.map((event) => {
        const position = this.insert(head + 1, event, null, null, recipients, recordedAt);
        if (position > head) head = position;
        return position;
      });
      this.groupHead = head;
      return positions;
    });
  }

  async appendToStream(stream: string, events: readonly BusbarEvent[], options: AppendToStreamOptions = {}): Promise<AppendToStreamResult> {
    this.assertOpen();
    assertStreamId(stream);
    const expected = options.expectedVersion ?? 'any';
    assertExpectedVersion(expected);
    return this.writes.write(() => {
      const found = this.statements.stream.get(stream) as { version: number; metadata: string | null } | undefined;
      let version = found?.version ?? 0;
      // A retry repeats every id; if the first is new, this is no retry, and
      // insert() still finds any later id that is already stored.
      const known = events.length > 0 && this.positionOf(events[0]!.id) !== undefined
        ? events.map((event) => this.positionOf(event.id))
        : [];
      if (known.length > 0 && known.every((position) => position !== undefined)) {
        return { positions: known as number[], version };
      }
      checkExpectedVersion(stream, expected, version);
      let head = this.groupHead;
      const recordedAt = this.recordingTime();
      const positions = events.map((event, index) => {
        const stored = known[index];
        if (stored !== undefined) return stored;
        const position = this.insert(head + 1, event, stream, version + 1, null, recordedAt);
        if (position > head) {
          head = position;
          version++;
        }
        return position;
      });
      this.groupHead = head;
      this.statements.saveStreamVersion.run(stream, version);
      if (found?.metadata !== undefined && found.metadata !== null) this.applyRetention(stream, JSON.parse(found.metadata) as StreamMetadata, version);
      return { positions, version };
    });
  }

  /** Inserts at `position` unless the id is stored; returns where the event is. */
  private insert(
    position: number,
    event: BusbarEvent,
    stream: string | null,
    streamVersion: number | null,
    recipients: string | null,
    recordedAt: number,
  ): number {
    const { changes } = this.statements.insert.run(position, event.id, event.type, stream, streamVersion, recipients, encodeEvent(event), recordedAt);
    if (changes === 1) return position;
    return (this.statements.positionOfId.get(event.id) as { position: number }).position;
  }

  private positionOf(id: string): number | undefined {
    return (this.statements.positionOfId.get(id) as { position: number } | undefined)?.position;
  }

  /** A commit time that never goes backwards, so `positionAt` can search by it. */
  private recordingTime(): number {
    this.lastRecordedAt = Math.max(this.lastRecordedAt, Date.now());
    return this.lastRecordedAt;
  }

  private currentHead(): number {
    return (this.statements.head.get() as { position: number }).position;
  }

  async readAll(options?: ReadAllOptions): Promise<ReadAllPage> {
    this.assertOpen();
    const { after: start, limit } = readAllOptions(options);
    let after = start;
    const keep = topicFilter(options?.topics);
    const events: LoggedEvent[] = [];
    let last = after;
    while (events.length < limit) {
      const want = limit - events.length;
      const rows = this.statements.readAll.all(after, keep === undefined ? want : Math.max(want, 256)) as unknown as Row[];
      for (const row of rows) {
        last = row[0];
        if (keep !== undefined && !keep(row[1], parseRecipients(row[4]))) continue;
        if (row[2] !== null && this.expired(row[2], row[6])) continue;
        events.push(toLogged(row));
        if (events.length === limit) break;
      }
      if (rows.length === 0 || keep === undefined) break;
      after = last;
    }
    return { events, last };
  }

  async head(): Promise<number> {
    this.assertOpen();
    return this.currentHead();
  }

  async positionAt(time: Date): Promise<number> {
    this.assertOpen();
    const first = this.statements.firstAtOrAfter.get(time.getTime()) as { position: number } | undefined;
    return first === undefined ? this.currentHead() : first.position - 1;
  }

  waitForAppend(after: number, signal?: AbortSignal): Promise<void> {
    if (this.closed || this.currentHead() > after) return Promise.resolve();
    return this.tail.wait(after, signal);
  }

  async readStream(stream: string, options?: ReadStreamOptions): Promise<LoggedEvent[]> {
    this.assertOpen();
    assertStreamId(stream);
    const { backward, from, limit } = readStreamOptions(options);
    const rows = (
      backward
        ? this.statements.readStreamBackward.all(stream, from ?? Number.MAX_SAFE_INTEGER, limit)
        : this.statements.readStreamForward.all(stream, from ?? 1, limit)
    ) as unknown as Row[];
    return rows.filter((row) => !this.expired(stream, row[6])).map(toLogged);
  }

  async streamVersion(stream: string): Promise<number> {
    this.assertOpen();
    assertStreamId(stream);
    return (this.statements.stream.get(stream) as { version: number } | undefined)?.version ?? 0;
  }

  async getEvent(id: string): Promise<LoggedEvent | undefined> {
    this.assertOpen();
    const row = this.statements.eventById.get(id) as unknown as Row | undefined;
    if (row === undefined || (row[2] !== null && this.expired(row[2], row[6]))) return undefined;
    return toLogged(row);
  }

  async setStreamMetadata(stream: string, metadata: StreamMetadata): Promise<void> {
    this.assertOpen();
    assertStreamId(stream);
    const checked = streamMetadata(metadata);
    return this.writes.write(() => {
      this.statements.saveStreamMetadata.run(stream, JSON.stringify(checked));
      const version = (this.statements.stream.get(stream) as { version: number }).version;
      this.applyRetention(stream, checked, version);
      if (checked.maxAge === undefined) this.maxAges.delete(stream);
      else this.maxAges.set(stream, checked.maxAge);
    });
  }

  async streamMetadata(stream: string): Promise<StreamMetadata> {
    this.assertOpen();
    assertStreamId(stream);
    const found = this.statements.stream.get(stream) as { metadata: string | null } | undefined;
    return found?.metadata === undefined || found.metadata === null ? {} : (JSON.parse(found.metadata) as StreamMetadata);
  }

  private applyRetention(stream: string, metadata: StreamMetadata, version: number): void {
    const { firstVersion, oldestRecordedAt } = retentionBounds(metadata, version);
    if (firstVersion > 1 || oldestRecordedAt > 0) this.statements.deleteOutside.run(stream, firstVersion, oldestRecordedAt);
  }

  private expired(stream: string, recordedAt: number): boolean {
    return isPastMaxAge(this.maxAges.get(stream), recordedAt);
  }

  async loadCheckpoint(name: string): Promise<number | undefined> {
    this.assertOpen();
    assertName('a checkpoint name', name);
    return (this.statements.checkpoint.get(name) as { position: number } | undefined)?.position;
  }

  async saveCheckpoint(name: string, position: number): Promise<void> {
    this.assertOpen();
    assertName('a checkpoint name', name);
    nonNegativeInteger('a checkpoint position', position);
    return this.writes.write(() => {
      this.statements.saveCheckpoint.run(name, position);
    });
  }

  async addDeadLetter(letter: StoredDeadLetter): Promise<void> {
    this.assertOpen();
    const json = JSON.stringify({ ...letter, event: encodeEvent(letter.event) });
    return this.writes.write(() => {
      this.statements.addDeadLetter.run(letter.id, letter.subscription, letter.position, json);
    });
  }

  async listDeadLetters(): Promise<StoredDeadLetter[]> {
    this.assertOpen();
    return (this.statements.deadLetters.all() as { letter: string; position: number }[]).map(({ letter, position }) => {
      const stored = JSON.parse(letter) as StoredDeadLetter & { event: string };
      return { ...stored, event: decodeEvent(stored.event, position) };
    });
  }

  async removeDeadLetter(id: string): Promise<boolean> {
    this.assertOpen();
    return this.writes.write(() => this.statements.removeDeadLetter.run(id).changes === 1);
  }

  async transaction<T>(work: (transaction: SqliteTransaction) => Promise<T>): Promise<T> {
    this.assertOpen();
    return this.writes.exclusive(() => work(this.database));
  }

  async markProcessed(consumer: string, id: string, transaction?: SqliteTransaction): Promise<boolean> {
    this.assertOpen();
    assertName('a consumer name', consumer);
    assertName('an event id', id);
    const mark = () => this.statements.markProcessed.run(consumer, id).changes === 1;
    // Inside `transaction` the database is already in it: write there, now.
    if (transaction !== undefined) return mark();
    return this.writes.write(mark);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Let queued writes commit: they were accepted before the close.
    await this.writes.write(() => undefined).catch(() => {});
    this.tail.wakeAll();
    this.database.close();
  }

  private assertOpen(): void {
    if (this.closed) throw closedError();
  }
}

function prepare(database: DatabaseSync) {
  const arrays = (statement: StatementSync) => {
    statement.setReturnArrays(true);
    return statement;
  };
  return {
    head: database.prepare('SELECT position FROM busbar_head'),
    saveHead: database.prepare('UPDATE busbar_head SET position = ?'),
    insert: database.prepare(
      `INSERT INTO busbar_events (position, id, type, stream, stream_version, recipients, event, recorded_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
    ),
    positionOfId: database.prepare('SELECT position FROM busbar_events WHERE id = ?'),
    eventById: arrays(database.prepare(`SELECT ${COLUMNS} FROM busbar_events WHERE id = ?`)),
    readAll: arrays(database.prepare(`SELECT ${COLUMNS} FROM busbar_events WHERE position > ? ORDER BY position LIMIT ?`)),
    readStreamForward: arrays(
      database.prepare(`SELECT ${COLUMNS} FROM busbar_events WHERE stream = ? AND stream_version >= ? ORDER BY stream_version LIMIT ?`),
    ),
    readStreamBackward: arrays(
      database.prepare(`SELECT ${COLUMNS} FROM busbar_events WHERE stream = ? AND stream_version <= ? ORDER BY stream_version DESC LIMIT ?`),
    ),
    firstAtOrAfter: database.prepare('SELECT position FROM busbar_events WHERE recorded_at >= ? ORDER BY recorded_at, position LIMIT 1'),
    stream: database.prepare('SELECT version, metadata FROM busbar_streams WHERE stream = ?'),
    streamsWithMetadata: database.prepare('SELECT stream, metadata FROM busbar_streams WHERE metadata IS NOT NULL'),
    saveStreamVersion: database.prepare(
      'INSERT INTO busbar_streams (stream, version) VALUES (?, ?) ON CONFLICT (stream) DO UPDATE SET version = excluded.version',
    ),
    saveStreamMetadata: database.prepare(
      'INSERT INTO busbar_streams (stream, version, metadata) VALUES (?, 0, ?) ON CONFLICT (stream) DO UPDATE SET metadata = excluded.metadata',
    ),
    deleteOutside: database.prepare('DELETE FROM busbar_events WHERE stream = ? AND (stream_version < ? OR recorded_at < ?)'),
    checkpoint: database.prepare('SELECT position FROM busbar_checkpoints WHERE name = ?'),
    saveCheckpoint: database.prepare(
      'INSERT INTO busbar_checkpoints (name, position) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET position = excluded.position',
    ),
    addDeadLetter: database.prepare('INSERT OR REPLACE INTO busbar_dead_letters (id, subscription, position, letter) VALUES (?, ?, ?, ?)'),
    deadLetters: database.prepare('SELECT letter, position FROM busbar_dead_letters ORDER BY rowid'),
    removeDeadLetter: database.prepare('DELETE FROM busbar_dead_letters WHERE id = ?'),
    markProcessed: database.prepare('INSERT INTO busbar_processed (consumer, id) VALUES (?, ?) ON CONFLICT DO NOTHING'),
  };
}

function toLogged(row: Row): LoggedEvent {
  return {
    position: row[0],
    event: decodeEvent(row[5], row[0]),
    stream: row[2] ?? undefined,
    streamVersion: row[3] ?? undefined,
    recipients: parseRecipients(row[4]),
    recordedAt: row[6],
  };
}

function parseRecipients(json: string | null): Recipients | undefined {
  return json === null ? undefined : (JSON.parse(json) as Recipients);
}

function closedError(): BusbarError {
  return new BusbarError('BUSBAR_ERR_CLOSED', 'the store is closed');
}
