import type { FastifyInstance } from 'fastify';
import type { ExpectedVersion } from '../../store/event-store.ts';
import { requireSubscribe } from '../auth.ts';
import type { RouteDependencies } from './route-dependencies.ts';
import { sendJson } from './events.ts';
import { cloudEvent, errors, publishedEvent } from './schemas.ts';

/** Largest page of `GET /v1/streams/{stream}`. */
export const MAX_STREAM_PAGE = 10_000;

const streamParams = {
  type: 'object',
  required: ['stream'],
  properties: { stream: { type: 'string', minLength: 1, maxLength: 256, description: 'A stream id, e.g. account-123.' } },
} as const;

/**
 * Event sourcing over HTTP: `POST /v1/streams/{stream}/events` appends with
 * an expected version (409 `BUSBAR_ERR_CONCURRENCY` when the stream is
 * elsewhere), `GET /v1/streams/{stream}` reads it.
 *
 * @example
 * ```ts
 * registerStreamRoutes(app, dependencies);
 * // curl -X POST localhost:2872/v1/streams/account-1/events -H 'content-type: application/json' \
 * //   -d '{"expectedVersion":"no_stream","events":[{"type":"account.opened","data":{"owner":"Ada"}}]}'
 * ```
 */
export function registerStreamRoutes(app: FastifyInstance, { context, publisher }: RouteDependencies): void {
  app.post(
    '/v1/streams/:stream/events',
    {
      config: { access: 'authenticated' },
      schema: {
        summary: 'Append to a stream',
        description:
          'Appends atomically if the stream is at `expectedVersion`: `any` (default), `no_stream`, `exists` or its exact version. ' +
          'Events are checked like published ones (shape, topic, rights, schema); an id already in the stream is not appended twice.',
        tags: ['streams'],
        params: streamParams,
        body: {
          type: 'object',
          required: ['events'],
          additionalProperties: false,
          properties: {
            expectedVersion: { anyOf: [{ type: 'string', enum: ['any', 'no_stream', 'exists'] }, { type: 'integer', minimum: 0 }] },
            events: { type: 'array', minItems: 1, items: publishedEvent },
          },
        },
        response: {
          201: {
            type: 'object',
            properties: {
              positions: { type: 'array', items: { type: 'integer' } },
              version: { type: 'integer', description: 'Pass it as the next expectedVersion.' },
            },
          },
          ...errors(400, 401, 403, 409, 413, 415),
        },
      },
    },
    async (request, reply) => {
      const { stream } = request.params as { stream: string };
      const body = request.body as { expectedVersion?: ExpectedVersion; events: unknown[] };
      const events = await publisher.prepare(request.principal!, body.events);
      const result = await context.store.appendToStream(stream, events, { expectedVersion: body.expectedVersion ?? 'any' });
      reply.code(201);
      return { positions: result.positions, version: result.version };
    },
  );

  app.get(
    '/v1/streams/:stream',
    {
      config: { access: 'authenticated' },
      schema: {
        summary: 'Read a stream',
        description: 'A stream with no events answers version 0 and no events. Every event read must be of a topic the key may read.',
        tags: ['streams'],
        params: streamParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            from: { type: 'integer', minimum: 0, description: 'First version to read; default 1 forward, the last backward.' },
            limit: { type: 'integer', minimum: 1, maximum: MAX_STREAM_PAGE, default: 1000 },
            direction: { type: 'string', enum: ['forward', 'backward'], default: 'forward' },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: { stream: { type: 'string' }, version: { type: 'integer' }, events: { type: 'array', items: cloudEvent } },
          },
          ...errors(400, 401, 403),
        },
      },
    },
    async (request, reply) => {
      const { stream } = request.params as { stream: string };
      const query = request.query as { from?: number; limit: number; direction: 'forward' | 'backward' };
      const [events, version] = await Promise.all([
        context.store.readStream(stream, { from: query.from, limit: query.limit, direction: query.direction }),
        context.store.streamVersion(stream),
      ]);
      for (const logged of events) requireSubscribe(request.principal!, logged.event.type);
      const serialized = events.map((logged) => context.serialize(logged.event));
      return sendJson(reply, `{"stream":${JSON.stringify(stream)},"version":${version},"events":[${serialized.join(',')}]}`);
    },
  );
}
