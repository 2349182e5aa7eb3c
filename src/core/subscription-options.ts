import type { BusbarEvent } from './event.ts';
import type { StartFrom } from './log-reader.ts';
import type { QueueOrder } from './ordered-queue.ts';
import type { Skip } from './results.ts';
import type { RetryOptions } from './retry.ts';

/** What a queue does when it is full. */
export type OverflowPolicy = 'wait' | 'reject' | 'drop-oldest';

/** Handed to every handler call. */
export interface HandlerContext<Context = unknown> {
  /** The subscription's name. */
  readonly subscription: string;
  /** 1 on the first try, 2 on the first retry… */
  readonly attempt: number;
  /** The subscription's context object (from `context`, or what `setup` returned). */
  readonly context: Context;
  /** Aborted when the attempt times out or the bus closes past its deadline. */
  readonly signal: AbortSignal;
}

/**
 * Handles one event. Return a value to complete (the value is the result),
 * return `skip` to skip, throw or reject to fail (and be retried).
 */
export type Handler<E extends BusbarEvent = BusbarEvent, Context = unknown, Result = unknown> = (
  event: E,
  context: HandlerContext<Context>,
) => Result | Skip | Promise<Result | Skip>;

export interface SubscriptionOptions<E extends BusbarEvent = BusbarEvent, Context = unknown> {
  /**
   * How many events are handled at once. A number is fixed; `{ min, max }`
   * runs `min` and adds one more for every `scaleStep` (default 10) queued
   * events, up to `max`. Default 1: one at a time, in order.
   */
  concurrency?: number | { min: number; max: number; scaleStep?: number };
  /** Bound of the queue (events waiting, not yet handled). Default 10 000. */
  queueLimit?: number;
  /** What `publish` meets when the queue is full. Default `wait`. */
  overflow?: OverflowPolicy;
  /** Which queued event goes next. Default `fifo`. */
  order?: QueueOrder;
  retry?: RetryOptions;
  /** Per-attempt time limit in ms; 0 disables it. Default 30 000. */
  timeout?: number;
  /** Only events whose `subject` is one of these. */
  subject?: string | readonly string[];
  /** Handle only events for which this returns true; the others are settled as skipped. */
  filter?: (event: E) => boolean;
  /** Handed to the handler as `context.context`. */
  context?: Context;
  /** Runs once before the first event; may return the context to use. */
  setup?: (context: Context) => Context | undefined | Promise<Context | undefined>;
  /**
   * On a bus with a store, whether the subscription is durable (default
   * true): it reads the log from a checkpoint kept under its name, so after
   * a restart it receives every committed event it had not finished. A
   * non-durable one gets events from publishes in this process only, like a
   * bus without a store.
   */
  durable?: boolean;
  /**
   * Where a durable subscription starts when no checkpoint is stored under
   * its name: `beginning`, `end` (default: events committed from now on), a
   * log position (events after it) or a time (events recorded from then on).
   */
  from?: StartFrom;
  /** Runs once after the subscription has drained on unsubscribe or close. */
  teardown?: (context: Context) => void | Promise<void>;
}

/** Live counters of one subscription. */
export interface SubscriptionStats {
  name: string;
  patterns: string[];
  /** Waiting in the queue (including events held back behind their ordering key). */
  pending: number;
  inFlight: number;
  /** The concurrency allowed right now. */
  concurrency: number;
  queueLimit: number;
  completed: number;
  skipped: number;
  /** Failed attempts (each throw, rejection or timeout). */
  failed: number;
  retried: number;
  deadLettered: number;
  expired: number;
  dropped: number;
  cancelled: number;
  /** Handling time from start to settlement, ms. */
  latency: { p50: number; p99: number; mean: number };
}
