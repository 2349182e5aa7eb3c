/**
 * `busbar/client`: a typed client for a Busbar server, for Node ≥ 22 and
 * browsers. It uses only the platform — `fetch`, `WebSocket`, streams and
 * Web Crypto — so it bundles for the browser as it is.
 *
 * @module
 */
export { createClient } from './client.ts';
export type {
  BusbarClient,
  ClientOptions,
  ExpectedVersion,
  LiveEvent,
  ReadAllOptions,
  ReadOptions,
} from './client-types.ts';
export { createEventId } from '../core/event-id.ts';
export type { EventInput } from './event-input.ts';
export type {
  LiveHandler,
  LiveOptions,
  LiveSubscription,
  ReconnectOptions,
  StartFrom,
  StateChange,
  SubscriptionState,
} from './live-options.ts';
export type { WebSocketConstructor } from './ws-connection.ts';
export type {
  Accepted,
  AppendResult,
  ComponentHealth,
  DeadLetterView,
  EventPage,
  HealthReport,
  ReceivedEvent,
  ServerStats,
  StreamPage,
  SubscriptionView,
  TopicView,
} from './wire-types.ts';
export { BusbarError, ConcurrencyError, errorCodes, type ErrorCode, OverloadError } from '../core/errors.ts';
export type { EventOptions } from '../core/event.ts';
export type { EventMap } from '../core/typed-events.ts';
