export { createBus, DEAD_LETTER_TOPIC } from './bus.ts';
export type {
  Bus,
  BusOptions,
  BusStats,
  CloseReport,
  Health,
  HealthProblem,
  InflightEvent,
  NotifyOptions,
  PublishOptions,
  RoutingOptions,
  SubscriptionHandle,
  TopicInfo,
} from './bus-types.ts';
export {
  CLOUDEVENTS_BATCH_JSON,
  CLOUDEVENTS_JSON,
  parseBatch,
  parseCloudEvent,
  parseEvent,
  serializeBatch,
  serializeEvent,
  toCloudEvent,
} from './cloudevents.ts';
export type { DeadLetter, DeadLetterFilter, DeadLetterNotice } from './dead-letters.ts';
export type { Receipt } from './delivery.ts';
export {
  BusbarError,
  ConcurrencyError,
  type ErrorCode,
  errorCodes,
  OverloadError,
  ValidationError,
  type ValidationIssue,
} from './errors.ts';
export { type BusbarEvent, createEvent, type EventOptions } from './event.ts';
export { createEventId, timeOfEventId } from './event-id.ts';
export type {
  AppendOptions,
  EventLog,
  LoggedEvent,
  ReadAllOptions,
  ReadAllPage,
  Recipients,
  StoredDeadLetter,
} from './event-log.ts';
export type { Lag, StartFrom } from './log-reader.ts';
export type { QueueOrder } from './ordered-queue.ts';
export { type CompiledPattern, compilePattern, type Pattern } from './pattern.ts';
export { type DeliveryResult, type DeliveryStatus, type Skip, skip } from './results.ts';
export type { RetryOptions } from './retry.ts';
export type { TopicDefinition } from './routing-table.ts';
export type { StandardSchemaV1 } from './schema.ts';
export type {
  Handler,
  HandlerContext,
  OverflowPolicy,
  SubscriptionOptions,
  SubscriptionStats,
} from './subscription-options.ts';
export { assertTopic, isTopic, MAX_TOPIC_LENGTH } from './topic.ts';
export type { EventMap, EventOf, EventsMatching, TopicsMatching } from './typed-events.ts';
