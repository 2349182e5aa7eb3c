import type { FastifyBaseLogger } from 'fastify';
import type { Bus } from '../core/bus-types.ts';
import type { BusbarEvent } from '../core/event.ts';
import type { EventStore } from '../store/event-store.ts';

/** What an API key may do; each right is granted per topic pattern. */
export type Right = 'publish' | 'subscribe' | 'admin';

/** Who is calling: an API key's holder, or everyone when no keys are configured. */
export interface Principal {
  /** The key's name (never the secret), `anonymous` without keys. */
  readonly name: string;
  /**
   * True if the principal holds `right` for `topic` (a concrete topic for
   * publish; a subscription pattern for subscribe, which must lie inside a
   * granted pattern). `admin` without a topic is the server-wide right.
   */
  can(right: Right, topic?: string): boolean;
}

/** Size and time limits, all configurable (`busbar serve --help`). */
export interface ServerLimits {
  /** Largest HTTP request body, bytes. */
  readonly maxBodyBytes: number;
  /** Largest inbound WebSocket message, bytes. */
  readonly maxMessageBytes: number;
  /** A streaming client whose unsent data passes this many bytes is cut off. */
  readonly sendBufferBytes: number;
  /** Interval of SSE heartbeat comments and WebSocket pings, ms. */
  readonly heartbeatMs: number;
}

/**
 * Who may call a route, declared as `config: { access }` when the route is
 * registered. The server's auth hook enforces it before the handler runs and
 * leaves the caller in `request.principal`:
 * - `public`: no key needed (`/v1/health*`);
 * - `authenticated` (the default): any configured key; topic rights are
 *   checked by the handler with `principal.can`;
 * - `admin`: a key with the admin right;
 * - `self`: the route authenticates on its own with `context.authenticate`
 *   (the streaming endpoints: they accept `?token=` for browsers, and a
 *   WebSocket reports a failed login with its own close code).
 */
export type RouteAccess = 'public' | 'authenticated' | 'admin' | 'self';

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
  interface FastifyRequest {
    /** Set by the auth hook for every route but `public` and `self` ones. */
    principal: Principal | null;
  }
}

/**
 * Numbers a part of the server contributes to `/v1/stats` (under `server`)
 * and `/metrics` (as `busbar_<name>`), e.g. open SSE connections. Names are
 * `[a-z][a-z0-9_]*` and unique; register them once, at start.
 */
export interface ServerMeters {
  /** A value read when stats or metrics are asked for (open connections…). */
  gauge(name: string, help: string, read: () => number): void;
  /** A total that only grows (messages sent, slow consumers cut off…). */
  counter(name: string, help: string): { add(amount?: number): void };
}

/** The outcome of accepting one event: its id and log position. */
export interface Accepted {
  readonly id: string;
  readonly position: number;
}

/**
 * What every part of the server shares. Built once in `server.ts`; the HTTP
 * routes and the streaming endpoints both read and publish through it, so
 * a rule (auth, schema, size) holds the same on every path.
 */
export interface ServerContext {
  readonly bus: Bus;
  readonly store: EventStore;
  readonly limits: ServerLimits;
  readonly log: FastifyBaseLogger;
  /** Time the server started (epoch ms). */
  readonly startedAt: number;
  /** Where streaming and other parts add their counts to stats and metrics. */
  readonly meters: ServerMeters;
  /**
   * The principal for a request's credentials: the `Authorization: Bearer`
   * header, or (for browsers' WebSocket and EventSource) a `token` query
   * parameter. Throws `BUSBAR_ERR_UNAUTHORIZED` when keys are configured and
   * none matches.
   */
  authenticate(authorization: string | undefined, queryToken: string | undefined): Principal;
  /**
   * Validates (CloudEvent shape, registered topic schema, size) and
   * publishes events as one unit: either every one is accepted or none is,
   * and the answer comes once they are committed to the log. Throws a
   * `BusbarError` for bad input, `BUSBAR_ERR_FORBIDDEN` if `principal` may
   * not publish one of the topics.
   *
   * Each item is a structured-mode CloudEvent, or the plain form
   * `{ type, data, ... }` without `specversion`, which gets a new id and the
   * server's source. Byte size is bounded by the transport before parsing
   * (the HTTP body limit, the WebSocket message limit).
   */
  publish(principal: Principal, events: readonly unknown[]): Promise<Accepted[]>;
  /** Events as the server sends them: parsed once, serialised once per event for every listener. */
  serialize(event: BusbarEvent): string;
}
