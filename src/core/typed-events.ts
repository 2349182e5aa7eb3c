import type { BusbarEvent } from './event.ts';

/**
 * Maps each topic to the type of its data, e.g.
 * `{ 'order.created': { id: string }; 'order.paid': { id: string; amount: number } }`.
 */
export type EventMap = Record<string, unknown>;

type Tokens<S extends string> = S extends `${infer Head}.${infer Rest}`
  ? [Head, ...Tokens<Rest>]
  : [S];

type TokensMatch<Topic extends string[], Pattern extends string[]> = Pattern extends ['>']
  ? Topic extends [string, ...string[]]
    ? true
    : false
  : Pattern extends [infer P extends string, ...infer PatternRest extends string[]]
    ? Topic extends [infer T extends string, ...infer TopicRest extends string[]]
      ? P extends '*'
        ? TokensMatch<TopicRest, PatternRest>
        : P extends T
          ? TokensMatch<TopicRest, PatternRest>
          : false
      : false
    : Topic extends []
      ? true
      : false;

/** The topics of `Events` that `Pattern` (a literal topic or NATS wildcard) matches. */
export type TopicsMatching<Events extends EventMap, Pattern extends string> = {
  [Topic in keyof Events & string]: TokensMatch<Tokens<Topic>, Tokens<Pattern>> extends true
    ? Topic
    : never;
}[keyof Events & string];

/** The event type for one topic of `Events`, or a union for a union of topics. */
export type EventOf<Events extends EventMap, Topic extends string> = Topic extends keyof Events
  ? BusbarEvent<Events[Topic], Topic>
  : BusbarEvent<unknown, Topic>;

/**
 * The events a subscription to `Patterns` can receive: typed when the
 * patterns are literals that match topics of the map, `BusbarEvent<unknown>`
 * otherwise (a RegExp, or a topic outside the map).
 */
export type EventsMatching<Events extends EventMap, Patterns> = Patterns extends RegExp
  ? AnyEventOf<Events>
  : Patterns extends string
    ? string extends Patterns
      ? AnyEventOf<Events>
      : [TopicsMatching<Events, Patterns>] extends [never]
        ? BusbarEvent<unknown, string>
        : EventOf<Events, TopicsMatching<Events, Patterns>>
    : Patterns extends readonly (infer Each)[]
      ? EventsMatching<Events, Each>
      : BusbarEvent;

type AnyEventOf<Events extends EventMap> = string extends keyof Events
  ? BusbarEvent
  : EventOf<Events, keyof Events & string>;
