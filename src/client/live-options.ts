// What a live subscription (`subscribe`, `sse`) takes and gives back.
import type { ReceivedEvent } from './wire-types.ts';

/**
 * Where a subscription starts: `'end'` (default, new events only),
 * `'beginning'`, a position `N` (events at `N` and after) or `{ after: N }`
 * (resume after the last position handled).
 */
export type StartFrom = 'end' | 'beginning' | number | { readonly after: number };

/**
 * - `connecting`: opening a connection (the first, or after a wait)
 * - `open`: subscribed, events flowing
 * - `paused`: the handler fell `bufferSize` events behind; reading stops (a
 *   WebSocket is closed) until it catches up, then resumes after the last
 *   event received
 * - `reconnecting`: the connection was lost; waiting before the next attempt
 * - `closed`: by `close()`, the signal, a handler error or a fatal refusal
 */
export type SubscriptionState = 'connecting' | 'open' | 'paused' | 'reconnecting' | 'closed';

/** What `onStateChange` is told. */
export interface StateChange {
  readonly state: SubscriptionState;
  /** Why the connection ended (`reconnecting`), or why the subscription closed. */
  readonly error?: unknown;
  /** `reconnecting`: which attempt comes next (1 for the first) and after how long, ms. */
  readonly attempt?: number;
  readonly delayMs?: number;
}

/** Reconnection with backoff and jitter. */
export interface ReconnectOptions {
  /** First wait, ms. Default 250. */
  initialDelayMs?: number;
  /** Longest wait, ms. Default 10 000. */
  maxDelayMs?: number;
  /** Failed attempts in a row after which the subscription closes with the last error. Default: no limit. */
  maxAttempts?: number;
}

/** Options of `subscribe` and `sse`. */
export interface LiveOptions {
  /** Default `'end'`. */
  from?: StartFrom;
  /** Only events whose `subject` equals this. */
  subject?: string;
  /** Aborting it closes the subscription. */
  signal?: AbortSignal;
  /** Events received and not yet handled, at most; past it the connection pauses. Default 1000. */
  bufferSize?: number;
  reconnect?: ReconnectOptions;
  /**
   * The link counts as dead after two intervals of silence (the WebSocket
   * pings the server after the first), and is reconnected. Default 30 000 ms.
   */
  heartbeatMs?: number;
  onStateChange?: (change: StateChange) => void;
}

/**
 * A live subscription. Events reach the handler one at a time, in log
 * order, each once, across reconnects.
 */
export interface LiveSubscription {
  readonly state: SubscriptionState;
  /**
   * The position to resume after: the last event the handler finished (or,
   * before any, where the subscription started). `{ after: position }` in a
   * new subscription continues with no gap and no duplicate.
   */
  readonly position: number | undefined;
  /** Resolves when the subscription is first open; rejects if it closes before. */
  readonly ready: Promise<void>;
  /** Resolves on `close()` or the signal; rejects with the error that closed it otherwise. */
  readonly closed: Promise<void>;
  /** Stops: events not yet handled are dropped; resolves once the handler in flight, if any, is done. */
  close(): Promise<void>;
}

/** The handler of a live subscription; awaited before the next event. */
export type LiveHandler<Event = ReceivedEvent> = (event: Event) => unknown;
