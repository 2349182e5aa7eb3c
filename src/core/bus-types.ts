import type { DeadLetter, DeadLetterFilter } from './dead-letters.ts';
import type { Receipt } from './delivery.ts';
import type { BusbarEvent, EventOptions } from './event.ts';
import type { EventLog } from './event-log.ts';
import type { Lag } from './log-reader.ts';
import type { Pattern } from './pattern.ts';
import type { DeliveryStatus } from './results.ts';
import type { TopicDefinition } from './routing-table.ts';
import type { Handler, SubscriptionOptions, SubscriptionStats } from './subscription-options.ts';
import type { EventMap, EventOf, EventsMatching } from './typed-events.ts';

export interface BusOptions {
  /** The CloudEvents `source` of events published without one. Default `busbar`. */
  source?: string;
  /** Only registered topics may be published. Default false. */
  strict?: boolean;
  /** Measure latencies for stats; off saves a clock read or two per event. Default true. */
  stats?: boolean;
  /** Dead letters kept in memory before the oldest are evicted. Default 10 000. */
  deadLetterLimit?: number;
  /** A running handler older than this (ms) makes `health()` report its subscription stuck. Default 60 000. */
  stuckAfter?: number;
  /**
   * A durable store (`busbar/store/sqlite`, `busbar/store/postgres`…):
   * publish resolves once the event is committed there, and subscriptions
   * are durable (they resume from a checkpoint). The bus does not close it.
   */
  store?: EventLog;
  /** Errors that have no caller to go to (a failing setup or teardown). Default: a process warning. */
  onError?: (error: Error, origin: string) => void;
}

/** How to route a published event besides its topic. */
export interface RoutingOptions {
  /** Deliver only to these subscriptions (by name), whatever their patterns. */
  to?: readonly string[];
  /** Deliver to every subscription, whatever its patterns. */
  broadcast?: boolean;
}

export type PublishOptions = EventOptions & RoutingOptions;

/** What `subscribe` returns. */
export interface SubscriptionHandle {
  readonly name: string;
  /** Resolves once setup has run (rejects if it failed). */
  readonly ready: Promise<void>;
  /** Stops routing events to it, lets what is queued finish, then runs teardown. */
  unsubscribe(): Promise<void>;
  stats(): SubscriptionStats;
  /** How far a durable subscription is behind the log; rejects for a non-durable one. */
  lag(): Promise<Lag>;
}

/** An event not yet settled by every recipient, with where each one stands. */
export interface InflightEvent {
  event: BusbarEvent;
  subscriptions: Record<string, DeliveryStatus | 'pending'>;
}

export interface TopicInfo extends TopicDefinition {
  topic: string;
  published: number;
}

export interface BusStats {
  total_published: number;
  /** Deliveries completed or skipped by a handler. */
  total_delivered: number;
  active_subscribers: number;
  /** Events waiting in all subscription queues. */
  queue_size: number;
  events_by_type: Record<string, number>;
  average_delivery_latency_ms: number;
  uptime_seconds: number;
  total_expired: number;
  total_dropped: number;
  total_dead_lettered: number;
  dead_letters: number;
  subscriptions: SubscriptionStats[];
}

export interface HealthProblem {
  subscription?: string;
  code: 'stuck' | 'queue-near-limit' | 'setup-failed' | 'closed';
  message: string;
}

export interface Health {
  status: 'ok' | 'degraded' | 'closed';
  problems: HealthProblem[];
}

export interface CloseReport {
  /** True when everything queued was handled before the deadline. */
  drained: boolean;
  /** What was cancelled at the deadline. */
  unfinished: { subscription: string; eventId: string; type: string }[];
}

/** Options of `notify`: where the work's result or error is published. */
export interface NotifyOptions extends EventOptions {
  /** Topic for a thrown error; default `<topic>.failed`. */
  errorTopic?: string;
}

/** The typed face of the bus. */
export interface Bus<Events extends EventMap = EventMap> {
  publish<Topic extends keyof Events & string>(
    topic: Topic,
    data: Events[Topic],
    options?: PublishOptions,
  ): Promise<Receipt<EventOf<Events, Topic>>>;
  publishEvent(event: unknown, options?: RoutingOptions): Promise<Receipt>;
  /**
   * Publishes several CloudEvents as one unit. Every event is parsed and
   * validated before any is published, so bad input publishes nothing. With
   * a store they are appended atomically, at consecutive positions, and the
   * promise resolves once they are committed; without one they are enqueued
   * in order (a full queue with policy `reject` refuses the rest of the
   * batch, after the events before it were enqueued).
   *
   * @example
   * ```ts
   * const receipts = await bus.publishEvents([
   *   { type: 'order.created', source: 'shop', id: 'o-1', data: { id: 'o-1' } },
   *   { type: 'order.paid', source: 'shop', id: 'o-1-paid', data: { id: 'o-1' } },
   * ]);
   * console.log(receipts.map((receipt) => receipt.sequence)); // [41, 42]
   * ```
   */
  publishEvents(events: readonly unknown[], options?: RoutingOptions): Promise<Receipt[]>;
  subscribe<
    const Patterns extends Pattern | readonly Pattern[],
    Context = undefined,
    Result = unknown,
  >(
    name: string,
    patterns: Patterns,
    handler: Handler<EventsMatching<Events, Patterns>, Context, Result>,
    options?: SubscriptionOptions<EventsMatching<Events, Patterns>, Context>,
  ): SubscriptionHandle;
  unsubscribe(name: string): Promise<void>;
  registerTopic(topic: keyof Events & string, definition?: TopicDefinition): void;
  unregisterTopic(topic: keyof Events & string): boolean;
  topics(): TopicInfo[];
  deadLetters(filter?: DeadLetterFilter): DeadLetter[];
  redrive(filter?: DeadLetterFilter): Promise<Receipt[]>;
  inflight(): InflightEvent[];
  fetch(id: string): BusbarEvent | undefined;
  notify<Topic extends keyof Events & string>(
    topic: Topic,
    work: () => Events[Topic] | Promise<Events[Topic]>,
    options?: NotifyOptions,
  ): Promise<Receipt>;
  idle(): Promise<void>;
  stats(): BusStats;
  health(): Health;
  close(options?: { deadline?: number }): Promise<CloseReport>;
  readonly closed: boolean;
  /** How far a durable subscription is behind the log. */
  lag(subscription: string): Promise<Lag>;
  /** Resolves once state kept in the store (dead letters) is loaded; at once without a store. */
  readonly ready: Promise<void>;
}
