import type { EventOptions } from '../core/event.ts';
import type { EventMap, EventsMatching } from '../core/typed-events.ts';
import type { EventInput } from './event-input.ts';
import type { LiveOptions, LiveSubscription } from './live-options.ts';
import type { WebSocketConstructor } from './ws-connection.ts';
import type {
  Accepted,
  AppendResult,
  DeadLetterView,
  EventPage,
  HealthReport,
  ReceivedEvent,
  ServerStats,
  StreamPage,
  SubscriptionView,
  TopicView,
} from './wire-types.ts';

/** What `createClient` takes. */
export interface ClientOptions {
  /** The server's base URL, e.g. `http://127.0.0.1:2872`. */
  url: string;
  /** Sent as `Authorization: Bearer …` (as `?token=` on WebSocket, which cannot send headers). */
  apiKey?: string;
  /** Default: the global `fetch` (Node ≥ 22, browsers). */
  fetch?: typeof fetch;
  /** Default: the global `WebSocket` (Node ≥ 22, browsers). */
  WebSocket?: WebSocketConstructor;
  /** How long one HTTP request may take, ms. Default 30 000. */
  timeoutMs?: number;
  /**
   * Retries of a request after a network failure or a 503, with backoff.
   * Publishes and appends are among them: their events carry client-made
   * ids, so a repeat is stored once. Default 3.
   */
  retries?: number;
}

/** Where `read` starts and what it keeps. */
export interface ReadOptions {
  /** Events after this position. Default 0 (the beginning). */
  after?: number;
  /** Most events in the page, 1–1000 (a `subject` filter may leave fewer). Default 100. */
  limit?: number;
  /** Patterns (`order.*`, `payment.>`); default every topic. */
  topics?: string | readonly string[];
  /** Only events with this subject. */
  subject?: string;
}

/** What `readAll` walks. */
export interface ReadAllOptions extends Omit<ReadOptions, 'limit'> {
  /** The last position to read (inclusive). Default: the head of the log when each page is read. */
  to?: number;
  /** Events per request, 1–1000. Default 1000. */
  pageSize?: number;
}

/** A stream append's precondition: `any`, `no_stream`, `exists` or the stream's exact version. */
export type ExpectedVersion = 'any' | 'no_stream' | 'exists' | number;

/** An event as a live subscription hands it on: typed by the patterns, with its position. */
export type LiveEvent<Events extends EventMap, Patterns> = EventsMatching<Events, Patterns> & { readonly sequence: number };

/**
 * A Busbar server, over HTTP, WebSocket and Server-Sent Events. Every
 * failure is a `BusbarError` with the server's code, status and message,
 * or `BUSBAR_ERR_UNREACHABLE` when the server cannot be reached.
 */
export interface BusbarClient<Events extends EventMap = EventMap> {
  /** The server's base URL. */
  readonly url: string;

  /** Publishes one event; resolves once it is committed, with its id and position. */
  publish<Type extends keyof Events & string>(type: Type, data: Events[Type], options?: EventOptions): Promise<Accepted>;
  /** Publishes an event given whole: the plain form `{ type, data, … }` or a structured CloudEvent. */
  publish(event: EventInput): Promise<Accepted>;
  /** Publishes events all or none, at consecutive positions. */
  publishBatch(events: readonly EventInput[]): Promise<Accepted[]>;

  /** One page of the log after a position. */
  read(options?: ReadOptions): Promise<EventPage>;
  /** Every event after a position, page by page, up to `to` or the head. */
  readAll(options?: ReadAllOptions): AsyncIterableIterator<ReceivedEvent>;
  /** An event by id, or undefined when the log has none. */
  getEvent(id: string): Promise<ReceivedEvent | undefined>;

  /** Appends to a stream if it is at `expectedVersion`; a `ConcurrencyError` (409) if not. */
  appendToStream(stream: string, events: readonly EventInput[], options?: { expectedVersion?: ExpectedVersion }): Promise<AppendResult>;
  readStream(stream: string, options?: { from?: number; limit?: number; direction?: 'forward' | 'backward' }): Promise<StreamPage>;

  /** Registers (or replaces) a topic, optionally with a JSON Schema its data must match. Needs admin. */
  registerTopic(topic: string, options?: { schema?: object | boolean; description?: string }): Promise<TopicView>;
  listTopics(): Promise<TopicView[]>;
  /** A registered topic, or undefined. */
  getTopic(topic: string): Promise<TopicView | undefined>;
  /** False when the topic was not registered. Needs admin. */
  unregisterTopic(topic: string): Promise<boolean>;

  /** The server bus's subscriptions with their lag. Needs admin. */
  listSubscriptions(): Promise<SubscriptionView[]>;
  listDeadLetters(options?: { subscription?: string; limit?: number }): Promise<DeadLetterView[]>;
  /** Hands dead letters back to their subscriptions; resolves with the events' ids. Needs admin. */
  redriveDeadLetters(options?: { subscription?: string; ids?: readonly string[] }): Promise<string[]>;
  /** Needs admin. */
  stats(): Promise<ServerStats>;
  /** The readiness report, whether ready (200) or not (503). */
  health(): Promise<HealthReport>;

  /**
   * Follows the log live over WebSocket: the handler gets each matching
   * event once, in order, one at a time (it may be async), across
   * reconnects.
   */
  subscribe<const Patterns extends string | readonly string[]>(
    patterns: Patterns,
    handler: (event: LiveEvent<Events, Patterns>) => unknown,
    options?: LiveOptions,
  ): LiveSubscription;
  /** The same over Server-Sent Events (fetch streaming), resuming with `lastEventId`. */
  sse<const Patterns extends string | readonly string[]>(
    patterns: Patterns,
    handler: (event: LiveEvent<Events, Patterns>) => unknown,
    options?: LiveOptions,
  ): LiveSubscription;

  /** Closes every live subscription of this client. */
  close(): Promise<void>;
}
