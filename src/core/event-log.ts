import type { BusbarEvent } from './event.ts';
import type { Pattern } from './pattern.ts';

/** Who a logged event is for besides the subscriptions whose patterns match it. */
export type Recipients = readonly string[] | 'all';

/** An event as the log holds it. */
export interface LoggedEvent {
  /** The global position: gap-free, increasing, in the order readers see commits. */
  readonly position: number;
  /** The event, with `sequence` equal to `position`. */
  readonly event: BusbarEvent;
  /** The stream it was appended to, if any. */
  readonly stream: string | undefined;
  /** Its version in that stream (the first event of a stream has version 1). */
  readonly streamVersion: number | undefined;
  /** `to` / `broadcast` routing it was published with, kept so a restart honours it. */
  readonly recipients: Recipients | undefined;
  /** Epoch ms at which the store committed it. */
  readonly recordedAt: number;
}

export interface AppendOptions {
  recipients?: Recipients;
}

export interface ReadAllOptions {
  /** Read events after this position. Default 0: from the start. */
  after?: number;
  /** At most this many events. Default 1000. */
  limit?: number;
  /** Only events whose topic matches one of these (events with `recipients` are kept too). */
  topics?: readonly Pattern[];
}

/** One page of a forward read. */
export interface ReadAllPage {
  readonly events: readonly LoggedEvent[];
  /**
   * The last position this read looked at, matching or not: the next page
   * starts after it, so a sparse filter does not rescan what it skipped.
   */
  readonly last: number;
}

/** A dead letter as the store keeps it. */
export interface StoredDeadLetter {
  readonly id: string;
  readonly subscription: string;
  readonly position: number;
  readonly event: BusbarEvent;
  readonly error: { name: string; message: string; code?: string };
  readonly attempts: number;
  /** RFC 3339. */
  readonly failedAt: string;
}

/**
 * What the bus needs of a durable store. With one configured, `publish`
 * resolves once the event is committed, and durable subscriptions read the
 * log from their checkpoint. The stores in `busbar/store/…` implement it (and
 * more: streams, retention, processed ids); user code does not change.
 */
export interface EventLog {
  /**
   * Appends the events atomically and resolves with their positions once
   * they are durable. An event whose id is already stored is not appended
   * again: its original position is returned.
   */
  append(events: readonly BusbarEvent[], options?: AppendOptions): Promise<readonly number[]>;
  /** Reads forward, in position order, never skipping a position a later read could reveal. */
  readAll(options?: ReadAllOptions): Promise<ReadAllPage>;
  /** The position of the last event readers can see; 0 when the log is empty. */
  head(): Promise<number>;
  /** The position of the last event recorded before `time`, so reading after it starts at `time`. */
  positionAt(time: Date): Promise<number>;
  /**
   * Resolves once the head is past `after` (at once if it already is), or
   * when `signal` aborts. Woken by commits, not by polling.
   */
  waitForAppend(after: number, signal?: AbortSignal): Promise<void>;
  /** The checkpoint of a named subscription: the position up to which it has handled everything. */
  loadCheckpoint(name: string): Promise<number | undefined>;
  saveCheckpoint(name: string, position: number): Promise<void>;
  addDeadLetter(letter: StoredDeadLetter): Promise<void>;
  listDeadLetters(): Promise<StoredDeadLetter[]>;
  removeDeadLetter(id: string): Promise<boolean>;
  close(): Promise<void>;
}
