import type { FastifyInstance, FastifyReply } from 'fastify';
import { CLOUDEVENTS_BATCH_JSON, CLOUDEVENTS_JSON } from '../../core/cloudevents.ts';
import { BusbarError } from '../../core/errors.ts';
import type { LoggedEvent } from '../../core/event-log.ts';
import { compilePattern } from '../../core/pattern.ts';
import { requireSubscribe } from '../auth.ts';
import { eventsOfRequest } from '../event-intake.ts';
import { bodyDocumentedOnly } from '../validation.ts';
import type { RouteDependencies } from './route-dependencies.ts';
import { accepted, cloudEvent, errors, publishedEvent } from './schemas.ts';

/** Largest page of `GET /v1/events`. */
export const MAX_PAGE = 1000;

const publishBody = {
  content: {
    'application/json': { schema: { oneOf: [publishedEvent, { type: 'array', items: publishedEvent }] } },
    [CLOUDEVENTS_JSON]: { schema: cloudEvent },
    [CLOUDEVENTS_BATCH_JSON]: { schema: { type: 'array', items: cloudEvent } },
  },
};

/**
 * `POST /v1/events` (every CloudEvents HTTP mode and plain JSON),
 * `GET /v1/events` (the log from a position, filtered by topic patterns and
 * subject) and `GET /v1/events/{id}`.
 *
 * @example
 * ```ts
 * registerEventRoutes(app, dependencies);
 * // curl -X POST localhost:2872/v1/events -H 'content-type: application/json' -d '{"type":"order.created","data":{"id":"o-1"}}'
 * ```
 */
export function registerEventRoutes(app: FastifyInstance, { context }: RouteDependencies): void {
  app.post(
    '/v1/events',
    {
      config: { access: 'authenticated', anyContentType: true },
      validatorCompiler: bodyDocumentedOnly,
      schema: {
        summary: 'Publish one event or a batch',
        description:
          'Structured (application/cloudevents+json), batch (application/cloudevents-batch+json), binary (ce-* headers; the body is the data) ' +
          'or plain JSON ({ type, data, … } or an array). A batch is validated whole before anything is published. ' +
          'Answers once the events are committed to the log; an id already stored answers with its original position.',
        tags: ['events'],
        body: publishBody,
        response: {
          201: { description: 'Published', oneOf: [accepted, { type: 'object', properties: { events: { type: 'array', items: accepted } } }] },
          ...errors(400, 401, 403, 404, 413, 415, 429),
        },
      },
    },
    async (request, reply) => {
      const { events, batch } = eventsOfRequest(request.headers, request.body);
      const published = await context.publish(request.principal!, events);
      reply.code(201);
      return batch ? { events: published } : published[0];
    },
  );

  app.get(
    '/v1/events',
    {
      config: { access: 'authenticated' },
      schema: {
        summary: 'Read the log',
        description: 'Events after position `after`, oldest first. Continue with `after=<last>`: `last` is the last position looked at, matching or not.',
        tags: ['events'],
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            after: { type: 'integer', minimum: 0, default: 0, description: 'Read events after this position.' },
            limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: 100, description: 'Positions to look at.' },
            topics: { type: 'string', description: 'Comma-separated patterns, e.g. order.*,payment.>; default all.' },
            subject: { type: 'string', description: 'Only events with this subject.' },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              events: { type: 'array', items: cloudEvent },
              last: { type: 'integer' },
              head: { type: 'integer', description: 'The newest position in the log.' },
            },
          },
          ...errors(400, 401, 403),
        },
      },
    },
    async (request, reply) => {
      const query = request.query as { after: number; limit: number; topics?: string; subject?: string };
      const patterns = patternsOf(query.topics);
      const principal = request.principal!;
      for (const pattern of patterns ?? ['>']) requireSubscribe(principal, pattern);
      const page = await context.store.readAll({ after: query.after, limit: query.limit, topics: patterns });
      const head = await context.store.head();
      const wanted = filterOf(patterns, query.subject);
      const events = page.events.filter(wanted).map((logged) => context.serialize(logged.event));
      return sendJson(reply, `{"events":[${events.join(',')}],"last":${page.last},"head":${head}}`);
    },
  );

  app.get(
    '/v1/events/:id',
    {
      config: { access: 'authenticated' },
      schema: {
        summary: 'Fetch one event by id',
        tags: ['events'],
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } },
        response: { 200: cloudEvent, ...errors(401, 403, 404) },
      },
    },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const logged = await context.store.getEvent(id);
      if (logged === undefined) throw new BusbarError('BUSBAR_ERR_NOT_FOUND', `no event with id "${id}"`, { details: { id } });
      requireSubscribe(request.principal!, logged.event.type);
      // Structured mode's own type, so CloudEvents SDKs recognise the body as an event.
      return reply.type('application/cloudevents+json; charset=utf-8').send(context.serialize(logged.event));
    },
  );
}

/** `a.*, b.>` → `['a.*', 'b.>']`, each checked; undefined for all topics. */
export function patternsOf(topics: string | undefined): string[] | undefined {
  if (topics === undefined) return undefined;
  const patterns = topics
    .split(',')
    .map((pattern) => pattern.trim())
    .filter((pattern) => pattern.length > 0);
  if (patterns.length === 0) throw new BusbarError('BUSBAR_ERR_INVALID_PATTERN', '"topics" names no pattern');
  for (const pattern of patterns) compilePattern(pattern);
  return patterns;
}

/**
 * The store keeps events addressed to subscriptions by name whatever the
 * patterns (its readers need them); a reader over HTTP asked for topics.
 */
function filterOf(patterns: string[] | undefined, subject: string | undefined): (logged: LoggedEvent) => boolean {
  const compiled = patterns?.map(compilePattern);
  return (logged) =>
    (subject === undefined || logged.event.subject === subject) &&
    (compiled === undefined || logged.recipients === undefined || compiled.some((pattern) => pattern.matches(logged.event.type)));
}

/** Sends JSON built from already serialised events, without parsing it again. */
export function sendJson(reply: FastifyReply, json: string): FastifyReply {
  return reply.type('application/json; charset=utf-8').send(json);
}
