import { BusbarError } from '../core/errors.ts';
import type { EventOptions } from '../core/event.ts';
import type { EventMap } from '../core/typed-events.ts';
import type { BusbarClient, ClientOptions, ReadAllOptions, ReadOptions } from './client-types.ts';
import type { Connect } from './connection.ts';
import { type EventInput, eventFromInput, eventFromOptions } from './event-input.ts';
import { HttpTransport } from './http-transport.ts';
import type { LiveHandler, LiveOptions, LiveSubscription } from './live-options.ts';
import { startLiveSubscription } from './live-subscription.ts';
import { sseConnector } from './sse-connection.ts';
import type { Accepted, DeadLetterView, EventPage, ReceivedEvent, SubscriptionView, TopicView } from './wire-types.ts';
import { type WebSocketConstructor, wsConnector } from './ws-connection.ts';

/**
 * A client for a Busbar server, for Node ≥ 22 and browsers: it uses only
 * the platform (`fetch`, `WebSocket`, streams), so it bundles as it is.
 * `Events` types publish and subscribe like `createBus<Events>()` does.
 *
 * @example
 * ```ts
 * import { createClient } from 'busbar/client';
 *
 * const client = createClient({ url: 'http://127.0.0.1:2872', apiKey: process.env.BUSBAR_API_KEY });
 * const { id, position } = await client.publish('order.created', { id: 'o-1', total: 250 });
 * const live = client.subscribe('order.*', (event) => console.log(event.sequence, event.type), { from: 'beginning' });
 * await live.ready;
 * ```
 */
export function createClient<Events extends EventMap = EventMap>(options: ClientOptions): BusbarClient<Events> {
  if (typeof options !== 'object' || options === null) {
    throw new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', 'createClient needs options: { url, apiKey?, fetch?, WebSocket? }');
  }
  const http = new HttpTransport(options);
  const WebSocketClass = options.WebSocket ?? (globalThis.WebSocket as WebSocketConstructor | undefined);
  const live = new Set<LiveSubscription>();

  const follow = (connect: Connect, handler: LiveHandler, liveOptions: LiveOptions | undefined): LiveSubscription => {
    const subscription = startLiveSubscription(connect, handler, liveOptions);
    live.add(subscription);
    const forget = (): boolean => live.delete(subscription);
    subscription.closed.then(forget, forget);
    return subscription;
  };

  const client: BusbarClient = {
    url: http.baseUrl,

    async publish(typeOrEvent: string | EventInput, data?: unknown, eventOptions?: EventOptions): Promise<Accepted> {
      const event = typeof typeOrEvent === 'string' ? eventFromOptions(typeOrEvent, data, eventOptions) : eventFromInput(typeOrEvent);
      return http.call<Accepted>('POST', '/v1/events', { body: event, idempotent: true });
    },

    async publishBatch(events) {
      const batch = listOf('events', events).map(eventFromInput);
      if (batch.length === 0) return [];
      const answer = await http.call<{ events: Accepted[] }>('POST', '/v1/events', { body: batch, idempotent: true });
      return answer.events;
    },

    read(readOptions: ReadOptions = {}) {
      return http.call<EventPage>('GET', '/v1/events', {
        query: { after: readOptions.after, limit: readOptions.limit, topics: topicsQuery(readOptions.topics), subject: readOptions.subject },
        idempotent: true,
      });
    },

    readAll(readOptions: ReadAllOptions = {}) {
      return readAll(client, readOptions);
    },

    async getEvent(id) {
      return orUndefined(http.call<ReceivedEvent>('GET', `/v1/events/${encodeURIComponent(id)}`, { idempotent: true }));
    },

    appendToStream(stream, events, appendOptions = {}) {
      return http.call('POST', `/v1/streams/${encodeURIComponent(stream)}/events`, {
        body: { expectedVersion: appendOptions.expectedVersion, events: listOf('events', events).map(eventFromInput) },
        idempotent: true,
      });
    },

    readStream(stream, readOptions = {}) {
      return http.call('GET', `/v1/streams/${encodeURIComponent(stream)}`, { query: { ...readOptions }, idempotent: true });
    },

    registerTopic(topic, registration = {}) {
      return http.call<TopicView>('PUT', `/v1/topics/${encodeURIComponent(topic)}`, { body: registration, idempotent: true });
    },

    async listTopics() {
      return (await http.call<{ topics: TopicView[] }>('GET', '/v1/topics', { idempotent: true })).topics;
    },

    getTopic(topic) {
      return orUndefined(http.call<TopicView>('GET', `/v1/topics/${encodeURIComponent(topic)}`, { idempotent: true }));
    },

    async unregisterTopic(topic) {
      const removed = await orUndefined(http.call<true>('DELETE', `/v1/topics/${encodeURIComponent(topic)}`, { idempotent: false }).then(() => true as const));
      return removed === true;
    },

    async listSubscriptions() {
      return (await http.call<{ subscriptions: SubscriptionView[] }>('GET', '/v1/subscriptions', { idempotent: true })).subscriptions;
    },

    async listDeadLetters(query = {}) {
      return (await http.call<{ deadLetters: DeadLetterView[] }>('GET', '/v1/dead-letters', { query: { ...query }, idempotent: true })).deadLetters;
    },

    async redriveDeadLetters(selection = {}) {
      return (await http.call<{ ids: string[] }>('POST', '/v1/dead-letters/redrive', { body: selection, idempotent: false })).ids;
    },

    stats() {
      return http.call('GET', '/v1/stats', { idempotent: true });
    },

    health() {
      return http.call('GET', '/v1/health', { idempotent: true, answers: [503] });
    },

    subscribe(patterns, handler, liveOptions) {
      if (WebSocketClass === undefined) {
        throw new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', 'no WebSocket here: pass one as the "WebSocket" option, or use sse()');
      }
      const connect = wsConnector(http, WebSocketClass, { topics: patternList(patterns), subject: liveOptions?.subject });
      return follow(connect, handler as LiveHandler, liveOptions);
    },

    sse(patterns, handler, liveOptions) {
      return follow(sseConnector(http, { topics: patternList(patterns), subject: liveOptions?.subject }), handler as LiveHandler, liveOptions);
    },

    async close() {
      await Promise.all([...live].map((subscription) => subscription.close()));
    },
  };
  return client as unknown as BusbarClient<Events>;
}

async function* readAll(client: BusbarClient, options: ReadAllOptions): AsyncIterableIterator<ReceivedEvent> {
  const { to, pageSize = 1000, topics, subject } = options;
  let after = options.after ?? 0;
  for (;;) {
    const limit = to === undefined ? pageSize : Math.min(pageSize, to - after);
    if (limit < 1) return;
    const page = await client.read({ after, limit, topics, subject });
    for (const event of page.events) {
      // With a topic filter the limit counts matches, so a page can reach past `to`.
      if (to !== undefined && event.sequence > to) return;
      yield event;
    }
    // `last` covers skipped positions too: a sparse filter is not rescanned.
    if (page.last <= after || page.last >= page.head || (to !== undefined && page.last >= to)) return;
    after = page.last;
  }
}

/** A 404 `BUSBAR_ERR_NOT_FOUND` as undefined: the thing asked for is not there. */
async function orUndefined<T>(answer: Promise<T>): Promise<T | undefined> {
  try {
    return await answer;
  } catch (error) {
    if (error instanceof BusbarError && error.code === 'BUSBAR_ERR_NOT_FOUND') return undefined;
    throw error;
  }
}

function patternList(patterns: unknown): string[] {
  const list = typeof patterns === 'string' ? [patterns] : patterns;
  if (!Array.isArray(list) || list.length === 0 || !list.every((pattern) => typeof pattern === 'string' && pattern.length > 0)) {
    throw new BusbarError('BUSBAR_ERR_INVALID_PATTERN', `patterns must be a pattern or a non-empty list of them (strings such as "order.*"), got ${JSON.stringify(patterns)}`);
  }
  return list;
}

function topicsQuery(topics: string | readonly string[] | undefined): string | undefined {
  return topics === undefined ? undefined : patternList(topics).join(',');
}

function listOf<T>(name: string, value: readonly T[]): readonly T[] {
  if (!Array.isArray(value)) throw new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', `"${name}" must be an array`);
  return value;
}
