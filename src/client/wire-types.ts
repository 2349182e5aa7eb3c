// What the server answers, as the client sees it (the JSON of docs/http-api.md).
import type { ErrorCode } from '../core/errors.ts';
import type { BusbarEvent } from '../core/event.ts';

/**
 * An event read from the server: a CloudEvent whose `sequence` is its log
 * position. Binary data arrives as `data_base64` (a base64 string) instead
 * of `data`.
 */
export type ReceivedEvent<Data = unknown, Type extends string = string> = BusbarEvent<Data, Type> & {
  readonly sequence: number;
};

/** A published event's id and log position. */
export interface Accepted {
  readonly id: string;
  readonly position: number;
}

/** One page of `GET /v1/events`. */
export interface EventPage<Event = ReceivedEvent> {
  readonly events: Event[];
  /** The last position the read looked at, matching or not: continue after it. */
  readonly last: number;
  /** The newest position in the log. */
  readonly head: number;
}

/** What a stream append answers. */
export interface AppendResult {
  readonly positions: number[];
  /** The stream's version now: pass it as the next `expectedVersion`. */
  readonly version: number;
}

/** A stream as `GET /v1/streams/{stream}` reads it. */
export interface StreamPage {
  readonly stream: string;
  readonly version: number;
  readonly events: ReceivedEvent[];
}

/** A registered topic. */
export interface TopicView {
  readonly topic: string;
  readonly schema?: unknown;
  readonly description?: string;
  /** Events published to it since the server started. */
  readonly published: number;
  /** Whether the topic validates data. */
  readonly validated: boolean;
}

/** `GET /v1/stats`: the bus's stats, the log head and the server's own counts. */
export interface ServerStats {
  readonly total_published: number;
  readonly total_delivered: number;
  readonly active_subscribers: number;
  readonly queue_size: number;
  readonly events_by_type: Record<string, number>;
  readonly average_delivery_latency_ms: number;
  readonly uptime_seconds: number;
  readonly log_head: number;
  readonly server: Record<string, number>;
  readonly [field: string]: unknown;
}

/** One component's health. */
export interface ComponentHealth {
  readonly status: 'ok' | 'degraded' | 'failed';
  readonly latencyMs?: number;
  readonly message?: string;
  readonly problems?: unknown[];
}

/** `GET /v1/health`: answered as it is, ready or not. */
export interface HealthReport {
  readonly status: 'ok' | 'degraded' | 'unavailable';
  readonly ready: boolean;
  readonly uptime_seconds: number;
  readonly checks: { readonly store: ComponentHealth; readonly bus: ComponentHealth };
}

/** A subscription of the server's bus, with its lag. */
export interface SubscriptionView {
  readonly name: string;
  readonly patterns: string[];
  readonly durable: boolean;
  readonly stats: Record<string, unknown>;
  readonly lag?: { checkpoint: number; head: number; events: number; seconds: number };
}

/** A dead-lettered event. */
export interface DeadLetterView {
  readonly id: string;
  readonly subscription: string;
  readonly attempts: number;
  readonly failedAt: string;
  readonly error: { name: string; message: string; code?: string };
  /** The event as it was handed to the subscription (with `sequence` when it came from the log). */
  readonly event: BusbarEvent;
}

/** The body of every error reply. */
export interface ErrorBody {
  readonly error: { code: ErrorCode | string; message: string; details?: Record<string, unknown> };
}
