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
import { assertExpectedVersion, assertStreamId, checkExpectedVersion } from '../expected-version.ts';
import { assertName, nonNegativeInteger, readAllOptions, readStreamOptions, streamMetadata } from '../read-options.ts';
import { isPastMaxAge, retentionBounds } from '../retention.ts';
import { topicFilter } from '../topic-filter.ts';
import { TailWaiters } from '../tail-waiters.ts';

interface Stream {
  version: number;
  /** Positions of the stream's events still kept, in version order. */
  positions: number[];
  metadata: StreamMetadata;
}

/** What `transaction()` hands its callback: processed ids that apply only if it commits. */
export interface MemoryTransaction {
  readonly processed: Map<string, Set<string>>;
}

/**
 * The in-memory store: the whole contract, nothing on disk. For tests, and
 * for code that wants the log's API (streams, reads) without durability.
 *
 * @example
 * ```ts
 * const store = createMemoryStore();
 * await store.appendToStream('account-1', [event], { expectedVersion: 'no_stream' });
 * ```
 */
export function createMemoryStore(): MemoryStore {
  return new MemoryStore();
}

export class MemoryStore implements EventStore<MemoryTransaction> {
  // Index = position - 1; a hole is an event retention removed.
  private readonly rows: (LoggedEvent | undefined)[] = [];
  private readonly byId = new Map<string, LoggedEvent>();
  private readonly streams = new Map<string, Stream>();
  private readonly checkpoints = new Map<string, number>();
  private readonly deadLetters = new Map<string, StoredDeadLetter>();
  private readonly processed = new Map<string, Set<string>>();
  private readonly tail = new TailWaiters();
  private lastRecordedAt = 0;
  private transactions: Promise<void> = Promise.resolve();
  private closed = false;

  async append(events: readonly BusbarEvent[], options: AppendOptions = {}): Promise<readonly number[]> {
    this.assertOpen();
    const positions = events.map((event) => this.byId.get(event.id)?.position ?? this.insert(event, undefined, undefined, options));
    this.tail.wake(this.rows.length);
    return positions;
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
    const state = this.streams.get(stream) ?? { version: 0, positions: [], metadata: {} };
    const fresh = events.filter((event) => !this.byId.has(event.id));
    if (fresh.length === 0 && events.length > 0) {
      // A retried append: nothing to add, whatever the stream's version now.
      return { positions: events.map((event) => this.byId.get(event.id)!.position), version: state.version };
    }
    checkExpectedVersion(stream, expected, state.version);
    this.streams.set(stream, state);
    const positions = events.map((event) => {
      const known = this.byId.get(event.id);
      if (known !== undefined) return known.position;
      const position = this.insert(event, stream, ++state.version, {});
      state.positions.push(position);
      return position;
    });
    this.applyRetention(state);
    this.tail.wake(this.rows.length);
    return { positions, version: state.version };
  }

  private insert(
    event: BusbarEvent,
    stream: string | undefined,
    streamVersion: number | undefined,
    options: AppendOptions,
  ): number {
    const position = this.rows.length + 1;
    this.lastRecordedAt = Math.max(this.lastRecordedAt, Date.now());
    const logged: LoggedEvent = {
      position,
      event: Object.freeze({ ...event, sequence: position }),
      stream,
      streamVersion,
      // Copied: the caller's array may change after the append.
      recipients: Array.isArray(options.recipients) ? Object.freeze([...options.recipients]) : options.recipients,
      recordedAt: this.lastRecordedAt,
    };
    this.rows.push(logged);
    this.byId.set(event.id, logged);
    return position;
  }

  async readAll(options?: ReadAllOptions): Promise<ReadAllPage> {
    this.assertOpen();
    const { after, limit } = readAllOptions(options);
    const keep = topicFilter(options?.topics);
    const events: LoggedEvent[] = [];
    let last = after;
    while (events.length < limit && last < this.rows.length) {
      const row = this.rows[last++];
      if (row === undefined || this.expired(row)) continue;
      if (keep === undefined || keep(row.event.type, row.recipients)) events.push(row);
    }
    return { events, last };
  }

  async head(): Promise<number> {
    this.assertOpen();
    return this.rows.length;
  }

  async positionAt(time: Date): Promise<number> {
    this.assertOpen();
    const at = time.getTime();
    // recordedAt never decreases, so the rows before `time` are a prefix.
    let low = 0;
    let high = this.rows.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      const row = this.rows[middle];
      const recordedAt = row?.recordedAt ?? this.recordedAtNear(middle);
      if (recordedAt < at) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** The recording time of the nearest kept row at or after `index` (holes have none). */
  private recordedAtNear(index: number): number {
    for (let i = index; i < this.rows.length; i++) {
      const row = this.rows[i];
      if (row !== undefined) return row.recordedAt;
    }
    return Number.POSITIVE_INFINITY;
  }

  waitForAppend(after: number, signal?: AbortSignal): Promise<void> {
    if (this.closed || this.rows.length > after) return Promise.resolve();
    return this.tail.wait(after, signal);
  }

  async readStream(stream: string, options?: ReadStreamOptions): Promise<LoggedEvent[]> {
    this.assertOpen();
    assertStreamId(stream);
    const { backward, from, limit } = readStreamOptions(options);
    const state = this.streams.get(stream);
    if (state === undefined) return [];
    const rows = state.positions
      .map((position) => this.rows[position - 1])
      .filter((row): row is LoggedEvent => row !== undefined && !this.expired(row));
    if (backward) {
      const start = from ?? state.version;
      return rows.filter((row) => row.streamVersion! <= start).reverse().slice(0, limit);
    }
    const start = from ?? 1;
    return rows.filter((row) => row.streamVersion! >= start).slice(0, limit);
  }

  async streamVersion(stream: string): Promise<number> {
    this.assertOpen();
    assertStreamId(stream);
    return this.streams.get(stream)?.version ?? 0;
  }

  async getEvent(id: string): Promise<LoggedEvent | undefined> {
    this.assertOpen();
    const row = this.byId.get(id);
    return row === undefined || this.expired(row) ? undefined : row;
  }

  async setStreamMetadata(stream: string, metadata: StreamMetadata): Promise<void> {
    this.assertOpen();
    assertStreamId(stream);
    const checked = streamMetadata(metadata);
    const state = this.streams.get(stream) ?? { version: 0, positions: [], metadata: {} };
    state.metadata = checked;
    this.streams.set(stream, state);
    this.applyRetention(state);
  }

  async streamMetadata(stream: string): Promise<StreamMetadata> {
    this.assertOpen();
    assertStreamId(stream);
    return { ...this.streams.get(stream)?.metadata };
  }

  /** Whether `row` is past its stream's `maxAge` (removed on the next append or metadata change). */
  private expired(row: LoggedEvent): boolean {
    if (row.stream === undefined) return false;
    const maxAge = this.streams.get(row.stream)?.metadata.maxAge;
    return isPastMaxAge(maxAge, row.recordedAt);
  }

  private applyRetention(state: Stream): void {
    const { firstVersion, oldestRecordedAt } = retentionBounds(state.metadata, state.version);
    state.positions = state.positions.filter((position) => {
      const row = this.rows[position - 1]!;
      if (row.streamVersion! >= firstVersion && row.recordedAt >= oldestRecordedAt) return true;
      this.rows[position - 1] = undefined;
      this.byId.delete(row.event.id);
      return false;
    });
  }

  async loadCheckpoint(name: string): Promise<number | undefined> {
    this.assertOpen();
    assertName('a checkpoint name', name);
    return this.checkpoints.get(name);
  }

  async saveCheckpoint(name: string, position: number): Promise<void> {
    this.assertOpen();
    assertName('a checkpoint name', name);
    nonNegativeInteger('a checkpoint position', position);
    this.checkpoints.set(name, position);
  }

  async addDeadLetter(letter: StoredDeadLetter): Promise<void> {
    this.assertOpen();
    this.deadLetters.set(letter.id, letter);
  }

  async listDeadLetters(): Promise<StoredDeadLetter[]> {
    this.assertOpen();
    return [...this.deadLetters.values()];
  }

  async removeDeadLetter(id: string): Promise<boolean> {
    this.assertOpen();
    return this.deadLetters.delete(id);
  }

  /** Transactions run one at a time, as on SQLite: a second waits for the first to end. */
  async transaction<T>(work: (transaction: MemoryTransaction) => Promise<T>): Promise<T> {
    this.assertOpen();
    const previous = this.transactions;
    let finished!: () => void;
    this.transactions = new Promise((resolve) => (finished = resolve));
    await previous;
    try {
      const transaction: MemoryTransaction = { processed: new Map() };
      const result = await work(transaction);
      for (const [consumer, ids] of transaction.processed) {
        for (const id of ids) this.processedBy(consumer).add(id);
      }
      return result;
    } finally {
      finished();
    }
  }

  async markProcessed(consumer: string, id: string, transaction?: MemoryTransaction): Promise<boolean> {
    this.assertOpen();
    assertName('a consumer name', consumer);
    assertName('an event id', id);
    if (this.processedBy(consumer).has(id)) return false;
    if (transaction === undefined) {
      this.processedBy(consumer).add(id);
      return true;
    }
    let pending = transaction.processed.get(consumer);
    if (pending === undefined) transaction.processed.set(consumer, (pending = new Set()));
    if (pending.has(id)) return false;
    pending.add(id);
    return true;
  }

  private processedBy(consumer: string): Set<string> {
    let ids = this.processed.get(consumer);
    if (ids === undefined) this.processed.set(consumer, (ids = new Set()));
    return ids;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.tail.wakeAll();
  }

  private assertOpen(): void {
    if (this.closed) throw new BusbarError('BUSBAR_ERR_CLOSED', 'the store is closed');
  }
}
