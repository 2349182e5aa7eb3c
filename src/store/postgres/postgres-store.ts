import type { ClientBase, Pool, PoolClient } from 'pg';
import { BusbarError } from '../../core/errors.ts';
import type { BusbarEvent } from '../../core/event.ts';
import type {
  AppendOptions,
  LoggedEvent,
  ReadAllOptions,
  ReadAllPage,
  StoredDeadLetter,
} from '../../core/event-log.ts';
import type {
  AppendToStreamOptions,
  AppendToStreamResult,
  EventStore,
  ReadStreamOptions,
  StreamMetadata,
} from '../event-store.ts';
import { assertExpectedVersion, assertStreamId } from '../expected-version.ts';
import { assertName, nonNegativeInteger, readAllOptions, readStreamOptions, streamMetadata } from '../read-options.ts';
import { TailWaiters } from '../tail-waiters.ts';
import { topicFilter } from '../topic-filter.ts';
import { type AppendRequest, appendRequest, applyRetention, streamRequest } from './append-batch.ts';
import {
  DEAD_LETTER_COLUMNS,
  type DeadLetterRow,
  deadLetterValues,
  EVENT_COLUMNS,
  type EventRow,
  recipientsOf,
  toDeadLetter,
  toLoggedEvent,
  visibleEvents,
} from './event-rows.ts';
import { GroupCommit } from './group-commit.ts';
import { HeadListener } from './listener.ts';
import { appendInTransaction } from './outbox.ts';
import { migrate, type SchemaNames, schemaNames } from './schema.ts';
import { closedError, storeError } from './store-errors.ts';
import { runTransaction } from './transaction.ts';

/**
 * Where and how the PostgreSQL store keeps its log.
 *
 * @example
 * ```ts
 * await createPostgresStore({ pool, schema: 'busbar_orders', notify: true });
 * ```
 */
export interface PostgresStoreOptions {
  /**
   * A pool to use; the store never ends it, and holds one of its connections
   * for LISTEN (so give it at least two). Close the store before ending the
   * pool: `pool.end()` waits for that connection. Without a pool the store
   * makes (and ends) its own.
   */
  pool?: Pool;
  /** For the store's own pool; default: the `PG*` environment variables. */
  connectionString?: string;
  /** The schema holding the store's tables; created if missing. Default `busbar`. */
  schema?: string;
  /**
   * NOTIFY on every commit and LISTEN on one held connection, so appends by
   * other processes (and outbox commits) wake this process's readers.
   * Default true. Without it only this store's own `append` and
   * `appendToStream` wake its readers, and its commits wake no other
   * process's: turn it off only where one process does all the writing.
   */
  notify?: boolean;
}

/** The parts of the `pg` module the store uses, handed in so that only `index.ts` imports it. */
export interface PgDriver {
  Pool: new (config: { connectionString?: string }) => Pool;
  escapeIdentifier(name: string): string;
}

/**
 * The PostgreSQL store: the durable log, streams, retention, checkpoints,
 * dead letters, processed ids and an outbox, in one schema. Positions are
 * gap-free: appends take one advisory lock per schema, so they commit in
 * position order and no reader sees a position before those below it.
 * Create it with `createPostgresStore` from `busbar/store/postgres`.
 *
 * @example
 * ```ts
 * const store = await createPostgresStore({ connectionString, schema: 'billing' });
 * const { version } = await store.appendToStream('invoice-7', [issued], { expectedVersion: 'no_stream' });
 * const page = await store.readAll({ after: 0, topics: ['invoices.>'] });
 * ```
 */
export class PostgresStore implements EventStore<PoolClient> {
  private readonly tail = new TailWaiters();
  private readonly group: GroupCommit;
  private readonly listener: HeadListener | undefined;
  /** The highest head known to be committed, from local commits, notifications and reads. */
  private knownHead = 0;
  private closing: Promise<void> | undefined;

  private readonly pool: Pool;
  private readonly ownsPool: boolean;
  private readonly names: SchemaNames;
  private readonly notify: boolean;

  private constructor(pool: Pool, ownsPool: boolean, names: SchemaNames, notify: boolean) {
    this.pool = pool;
    this.ownsPool = ownsPool;
    this.names = names;
    this.notify = notify;
    this.group = new GroupCommit(pool, names, notify, (head) => this.advance(head));
    if (notify) {
      this.listener = new HeadListener(pool, names, {
        onHead: (head) => this.advance(head),
        onListening: (head) => {
          this.knownHead = Math.max(this.knownHead, head);
          // Notifications may have been lost while away: every reader re-reads.
          this.tail.wakeAll();
        },
      });
    }
  }

  /** Connects, migrates the schema and starts listening; see `createPostgresStore`. */
  static async open(driver: PgDriver, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const names = schemaNames(options.schema ?? 'busbar', (name) => driver.escapeIdentifier(name));
    const pool = options.pool ?? new driver.Pool({ connectionString: options.connectionString });
    // Idle connections that drop emit 'error' on the pool; unhandled, that
    // would crash the process. The pool discards them; the next query reconnects.
    if (options.pool === undefined) pool.on('error', () => {});
    const store = new PostgresStore(pool, options.pool === undefined, names, options.notify ?? true);
    try {
      const client = await pool.connect();
      try {
        await migrate(client, names);
        client.release();
      } catch (error) {
        // Not back into the pool: the connection may be what failed.
        client.release(error as Error);
        throw error;
      }
      if (store.listener !== undefined) await store.listener.start();
      else store.knownHead = await store.head();
    } catch (error) {
      await store.close().catch(() => {});
      throw storeError(error);
    }
    return store;
  }

  /** How many append transactions this store has committed; group commit makes it fewer than the calls. */
  get appendTransactions(): number {
    return this.group.transactions;
  }

  private advance(head: number): void {
    if (head > this.knownHead) this.knownHead = head;
    this.tail.wake(head);
  }

  async append(events: readonly BusbarEvent[], options?: AppendOptions): Promise<readonly number[]> {
    this.assertOpen();
    if (events.length === 0) return [];
    return (await this.submit(appendRequest(events, options))).positions;
  }

  async appendToStream(
    stream: string,
    events: readonly BusbarEvent[],
    options: AppendToStreamOptions = {},
  ): Promise<AppendToStreamResult> {
    this.assertOpen();
    assertStreamId(stream);
    const expected = options.expectedVersion ?? 'any';
    assertExpectedVersion(expected);
    const { positions, version } = await this.submit(streamRequest(stream, events, expected));
    return { positions, version: version! };
  }

  private async submit(request: AppendRequest): Promise<{ positions: number[]; version: number | undefined }> {
    const outcome = await this.group.submit(request);
    if (!outcome.ok) throw outcome.error;
    return outcome;
  }

  /**
   * Appends inside the caller's open transaction on their own `pg` client:
   * the outbox. The events commit (and wake readers) with the caller's other
   * writes, or vanish with them on rollback. Run it last and commit soon: it
   * holds the schema's append lock, which every other append waits for,
   * until the transaction ends, so never await this store's `append`,
   * `appendToStream` or `setStreamMetadata` inside that transaction: they
   * would wait for the lock it holds. Use READ COMMITTED (the default); under
   * REPEATABLE READ or SERIALIZABLE a concurrent append makes it fail with a
   * serialization error, and the transaction must be retried. Without an
   * open transaction on `client` it fails with `BUSBAR_ERR_INVALID_ARGUMENT`.
   *
   * @example
   * ```ts
   * const client = await pool.connect();
   * await client.query('BEGIN');
   * await client.query('INSERT INTO orders (id) VALUES ($1)', [orderId]);
   * await store.appendWithin(client, [orderPlaced]);
   * await client.query('COMMIT');
   * client.release();
   * ```
   */
  async appendWithin(client: ClientBase, events: readonly BusbarEvent[], options?: AppendOptions): Promise<readonly number[]> {
    this.assertOpen();
    if (events.length === 0) return [];
    return (await appendInTransaction(client, this.names, appendRequest(events, options), this.notify)).positions;
  }

  /**
   * `appendToStream` inside the caller's open transaction; see `appendWithin`.
   *
   * @example
   * ```ts
   * await store.transaction(async (client) => {
   *   await client.query('UPDATE accounts SET balance = balance - $1 WHERE id = $2', [amount, id]);
   *   await store.appendToStreamWithin(client, `account-${id}`, [withdrawn], { expectedVersion: version });
   * });
   * ```
   */
  async appendToStreamWithin(
    client: ClientBase,
    stream: string,
    events: readonly BusbarEvent[],
    options: AppendToStreamOptions = {},
  ): Promise<AppendToStreamResult> {
    this.assertOpen();
    assertStreamId(stream);
    const expected = options.expectedVersion ?? 'any';
    assertExpectedVersion(expected);
    const outcome = await appendInTransaction(client, this.names, streamRequest(stream, events, expected), this.notify);
    return { positions: outcome.positions, version: outcome.version! };
  }

  async readAll(options?: ReadAllOptions): Promise<ReadAllPage> {
    this.assertOpen();
    const { after, limit } = readAllOptions(options);
    const keep = topicFilter(options?.topics);
    if (limit === 0) return { events: [], last: Math.min(after, await this.head()) };
    // A sparse filter reads wider pages so it does not take a round trip per match.
    const pageSize = keep === undefined ? limit : Math.min(Math.max(limit, 500), 5000);
    const { from, where } = visibleEvents(this.names);
    const events: LoggedEvent[] = [];
    let cursor = after;
    for (;;) {
      // The head comes from the same statement, hence the same snapshot as the rows.
      const rows = await this.query<EventRow & { head: string }>(
        `SELECT h.position::text AS head, page.* FROM ${this.names.head} h LEFT JOIN LATERAL (
           SELECT ${EVENT_COLUMNS} FROM ${from} WHERE e.position > $1 AND ${where}
           ORDER BY e.position LIMIT $2) page ON true`,
        [cursor, pageSize],
        'read_all',
      );
      const head = Number(rows[0]!.head);
      this.advance(head);
      const found = rows[0]!.position === null ? [] : rows;
      for (const row of found) {
        if (keep !== undefined && !keep(row.type, recipientsOf(row))) continue;
        events.push(toLoggedEvent(row));
        if (events.length === limit) return { events, last: Number(row.position) };
      }
      if (found.length < pageSize) return { events, last: head };
      cursor = Number(found[found.length - 1]!.position);
    }
  }

  async head(): Promise<number> {
    this.assertOpen();
    const rows = await this.query<{ head: string }>(`SELECT position::text AS head FROM ${this.names.head}`);
    return Number(rows[0]!.head);
  }

  async positionAt(time: Date): Promise<number> {
    this.assertOpen();
    if (!(time instanceof Date) || Number.isNaN(time.getTime())) {
      throw new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', `positionAt needs a valid Date, got ${String(time)}`);
    }
    // recorded_at never decreases with position, so the index on (recorded_at, position) answers it.
    const rows = await this.query<{ position: string }>(
      `SELECT e.position::text AS position FROM ${this.names.events} e
       WHERE e.recorded_at < $1 ORDER BY e.recorded_at DESC, e.position DESC LIMIT 1`,
      [time.toISOString()],
    );
    return rows.length === 0 ? 0 : Number(rows[0]!.position);
  }

  waitForAppend(after: number, signal?: AbortSignal): Promise<void> {
    if (this.closing !== undefined || this.knownHead > after) return Promise.resolve();
    // While the listener is up, every commit after knownHead will be notified.
    if (this.listener?.listening) return this.tail.wait(after, signal);
    // Otherwise (notify off, or the listener reconnecting) the database may be
    // ahead of what this process heard: look once, after parking, so a commit
    // in between is not missed. A failed look wakes the reader to re-read and
    // meet the error there.
    const looked = new AbortController();
    const waiting = this.tail.wait(after, signal === undefined ? looked.signal : AbortSignal.any([signal, looked.signal]));
    this.head().then(
      (head) => (head > after ? this.advance(head) : undefined),
      () => looked.abort(),
    );
    return waiting;
  }

  async readStream(stream: string, options?: ReadStreamOptions): Promise<LoggedEvent[]> {
    this.assertOpen();
    assertStreamId(stream);
    const { backward, from, limit } = readStreamOptions(options);
    const visible = visibleEvents(this.names);
    const bound = from === undefined ? 'true' : backward ? 'e.stream_version <= $3' : 'e.stream_version >= $3';
    const rows = await this.query<EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM ${visible.from}
       WHERE e.stream = $1 AND ${bound} AND ${visible.where}
       ORDER BY e.stream_version ${backward ? 'DESC' : 'ASC'} LIMIT $2`,
      from === undefined ? [stream, limit] : [stream, limit, from],
    );
    return rows.map(toLoggedEvent);
  }

  async streamVersion(stream: string): Promise<number> {
    this.assertOpen();
    assertStreamId(stream);
    const rows = await this.query<{ version: string }>(
      `SELECT version::text AS version FROM ${this.names.streams} WHERE stream = $1`,
      [stream],
    );
    return rows.length === 0 ? 0 : Number(rows[0]!.version);
  }

  async getEvent(id: string): Promise<LoggedEvent | undefined> {
    this.assertOpen();
    const { from, where } = visibleEvents(this.names);
    const rows = await this.query<EventRow>(`SELECT ${EVENT_COLUMNS} FROM ${from} WHERE e.id = $1 AND ${where}`, [id]);
    return rows.length === 0 ? undefined : toLoggedEvent(rows[0]!);
  }

  async setStreamMetadata(stream: string, metadata: StreamMetadata): Promise<void> {
    this.assertOpen();
    assertStreamId(stream);
    const checked = streamMetadata(metadata);
    await runTransaction(this.pool, async (client) => {
      // Under the append lock, so retention sees the stream's latest version.
      await client.query(`SELECT pg_advisory_xact_lock(${this.names.appendLock})`);
      await client.query(
        `INSERT INTO ${this.names.streams} (stream, metadata) VALUES ($1, $2::jsonb)
         ON CONFLICT (stream) DO UPDATE SET metadata = excluded.metadata`,
        [stream, JSON.stringify(checked)],
      );
      await applyRetention(client, this.names, [stream]);
    }, false);
  }

  async streamMetadata(stream: string): Promise<StreamMetadata> {
    this.assertOpen();
    assertStreamId(stream);
    const rows = await this.query<{ metadata: string }>(
      `SELECT metadata::text AS metadata FROM ${this.names.streams} WHERE stream = $1`,
      [stream],
    );
    return rows.length === 0 ? {} : (JSON.parse(rows[0]!.metadata) as StreamMetadata);
  }

  async loadCheckpoint(name: string): Promise<number | undefined> {
    this.assertOpen();
    assertName('a checkpoint name', name);
    const rows = await this.query<{ position: string }>(
      `SELECT position::text AS position FROM ${this.names.checkpoints} WHERE name = $1`,
      [name],
    );
    return rows.length === 0 ? undefined : Number(rows[0]!.position);
  }

  async saveCheckpoint(name: string, position: number): Promise<void> {
    this.assertOpen();
    assertName('a checkpoint name', name);
    nonNegativeInteger('a checkpoint position', position);
    await this.query(
      `INSERT INTO ${this.names.checkpoints} (name, position) VALUES ($1, $2)
       ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = now()`,
      [name, position],
    );
  }

  async addDeadLetter(letter: StoredDeadLetter): Promise<void> {
    this.assertOpen();
    await this.query(
      `INSERT INTO ${this.names.deadLetters} (id, subscription, position, event, sequence, error, attempts, failed_at)
       VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)
       ON CONFLICT (id) DO UPDATE SET subscription = excluded.subscription, position = excluded.position,
         event = excluded.event, sequence = excluded.sequence, error = excluded.error,
         attempts = excluded.attempts, failed_at = excluded.failed_at`,
      deadLetterValues(letter),
    );
  }

  async listDeadLetters(): Promise<StoredDeadLetter[]> {
    this.assertOpen();
    const rows = await this.query<DeadLetterRow>(`SELECT ${DEAD_LETTER_COLUMNS} FROM ${this.names.deadLetters} ORDER BY seq`);
    return rows.map(toDeadLetter);
  }

  async removeDeadLetter(id: string): Promise<boolean> {
    this.assertOpen();
    try {
      const result = await this.pool.query(`DELETE FROM ${this.names.deadLetters} WHERE id = $1`, [id]);
      return result.rowCount === 1;
    } catch (error) {
      throw storeError(error);
    }
  }

  /**
   * Runs `work` in one transaction on a client of the store's pool, which it
   * hands to `work`: pass it to `markProcessed` and `appendWithin` so they
   * commit with the handler's own writes. Errors thrown by `work` are
   * rethrown as they are, after ROLLBACK.
   *
   * @example
   * ```ts
   * await store.transaction(async (client) => {
   *   if (!(await store.markProcessed('mailer', event.id, client))) return; // seen before
   *   await client.query('INSERT INTO sent_mail (event_id) VALUES ($1)', [event.id]);
   * });
   * ```
   */
  async transaction<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
    this.assertOpen();
    return await runTransaction(this.pool, work, true);
  }

  /**
   * Records that `consumer` has processed `id`; false if it already had.
   * Given the client of `transaction()`, the record commits or rolls back
   * with the rest of that transaction.
   *
   * @example
   * ```ts
   * if (await store.markProcessed('indexer', event.id)) await index(event);
   * ```
   */
  async markProcessed(consumer: string, id: string, client?: ClientBase): Promise<boolean> {
    this.assertOpen();
    assertName('a consumer name', consumer);
    assertName('an event id', id);
    const sql = `INSERT INTO ${this.names.processed} (consumer, id) VALUES ($1, $2) ON CONFLICT DO NOTHING`;
    try {
      const result = await (client ?? this.pool).query(sql, [consumer, id]);
      return result.rowCount === 1;
    } catch (error) {
      throw storeError(error);
    }
  }

  /**
   * Stops taking calls, lets appends already accepted commit, stops the
   * listener and, if the store made its pool, ends it. Later calls reject
   * with `BUSBAR_ERR_CLOSED`; parked readers wake.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.tail.wakeAll();
      await this.group.drain();
      await this.listener?.close();
      if (this.ownsPool) await this.pool.end();
    })();
    return this.closing;
  }

  /**
   * `name`: prepare the statement once per connection and reuse its plan
   * (for the hot ones: planning a read page costs about a quarter of a ms).
   */
  private async query<Row extends object>(sql: string, values?: unknown[], name?: string): Promise<Row[]> {
    try {
      const config = name === undefined ? { text: sql, values } : { name: this.names.statement(name), text: sql, values };
      return (await this.pool.query<Row & Record<string, unknown>>(config)).rows;
    } catch (error) {
      throw storeError(error);
    }
  }

  private assertOpen(): void {
    if (this.closing !== undefined) throw closedError();
  }
}
