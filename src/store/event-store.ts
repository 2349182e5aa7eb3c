import type { BusbarEvent } from '../core/event.ts';
import type { EventLog, LoggedEvent } from '../core/event-log.ts';

/**
 * What a stream must look like for an append to go ahead: `any` (no check),
 * `no_stream` (it has no events yet), `exists` (it has at least one), or the
 * exact version of its last event (0 for a stream with none).
 */
export type ExpectedVersion = 'any' | 'no_stream' | 'exists' | number;

export interface AppendToStreamOptions {
  /** Default `any`. */
  expectedVersion?: ExpectedVersion;
}

export interface AppendToStreamResult {
  /** The global position of each event, in order. */
  readonly positions: readonly number[];
  /** The stream's version after the append: pass it as the next `expectedVersion`. */
  readonly version: number;
}

export interface ReadStreamOptions {
  /** Default `forward`. */
  direction?: 'forward' | 'backward';
  /**
   * The first version to read, inclusive. Default: 1 forward, the last
   * version backward.
   */
  from?: number;
  /** Default: all of them. */
  limit?: number;
}

/**
 * How much of a stream the store keeps. Events outside any of the bounds are
 * no longer read and their space is freed.
 */
export interface StreamMetadata {
  /** Keep only the newest `maxCount` events. */
  maxCount?: number;
  /** Keep only events recorded in the last `maxAge` seconds. */
  maxAge?: number;
  /** Drop events with a version below this one. */
  truncateBefore?: number;
}

/**
 * The durable log with its event-sourcing face. Memory, SQLite and
 * PostgreSQL implement it and pass the same contract suite
 * (`busbar/testing`); so can a third-party store.
 *
 * `Transaction` is what `transaction()` hands its callback: a handle of the
 * store's own database that `markProcessed` can join, so a handler's effects
 * and its processed-id commit together.
 */
export interface EventStore<Transaction = unknown> extends EventLog {
  /**
   * Appends to a stream, atomically, if it is at `expectedVersion`; fails
   * with `ConcurrencyError` otherwise. Events whose ids are already stored in
   * this stream are not appended again (a retried append is a no-op that
   * returns the original positions).
   */
  appendToStream(
    stream: string,
    events: readonly BusbarEvent[],
    options?: AppendToStreamOptions,
  ): Promise<AppendToStreamResult>;
  readStream(stream: string, options?: ReadStreamOptions): Promise<LoggedEvent[]>;
  /** The version of the stream's last event; 0 when it has none. */
  streamVersion(stream: string): Promise<number>;
  /** One event by id. */
  getEvent(id: string): Promise<LoggedEvent | undefined>;
  setStreamMetadata(stream: string, metadata: StreamMetadata): Promise<void>;
  streamMetadata(stream: string): Promise<StreamMetadata>;
  /**
   * Runs `work` in one database transaction: it commits if `work` resolves
   * and rolls back if it throws.
   */
  transaction<T>(work: (transaction: Transaction) => Promise<T>): Promise<T>;
  /**
   * Records that `consumer` has processed event `id`; false if it already
   * had. Inside `transaction`, the record commits or rolls back with the rest.
   */
  markProcessed(consumer: string, id: string, transaction?: Transaction): Promise<boolean>;
}
