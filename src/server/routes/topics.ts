import type { FastifyInstance } from 'fastify';
import { BusbarError } from '../../core/errors.ts';
import type { JsonSchema } from '../json-schema.ts';
import { emptyBodyAsObject } from '../validation.ts';
import type { RouteDependencies } from './route-dependencies.ts';
import { errors, topicParams, topicView } from './schemas.ts';

/**
 * Topic registration: `PUT /v1/topics/{topic}` (with an optional JSON Schema
 * enforced on every publish path, kept across restarts), `GET /v1/topics`,
 * `GET /v1/topics/{topic}`, `DELETE /v1/topics/{topic}`. Changing topics
 * needs the admin right; reading them, any key.
 *
 * @example
 * ```ts
 * registerTopicRoutes(app, dependencies);
 * // curl -X PUT localhost:2872/v1/topics/order.created -H 'content-type: application/json' \
 * //   -d '{"schema":{"type":"object","required":["id"]}}'
 * ```
 */
export function registerTopicRoutes(app: FastifyInstance, { topics }: RouteDependencies): void {
  app.put(
    '/v1/topics/:topic',
    {
      config: { access: 'admin' },
      preValidation: emptyBodyAsObject,
      schema: {
        summary: 'Register a topic',
        description: 'Creates or replaces the registration. An invalid schema is refused (400) and changes nothing.',
        tags: ['topics'],
        params: topicParams,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            schema: { type: ['object', 'boolean'], description: 'A JSON Schema (draft-07; 2019-09 and 2020-12 by $schema) for the data.' },
            description: { type: 'string', maxLength: 1000 },
          },
        },
        response: { 200: topicView, 201: topicView, ...errors(400, 401, 403, 415) },
      },
    },
    async (request, reply) => {
      const { topic } = request.params as { topic: string };
      const body = request.body as { schema?: JsonSchema; description?: string };
      const { created } = await topics.register({ topic, schema: body.schema, description: body.description });
      reply.code(created ? 201 : 200);
      return topics.get(topic);
    },
  );

  app.get(
    '/v1/topics',
    {
      config: { access: 'authenticated' },
      schema: {
        summary: 'List registered topics',
        tags: ['topics'],
        response: { 200: { type: 'object', properties: { topics: { type: 'array', items: topicView } } }, ...errors(401) },
      },
    },
    async () => ({ topics: topics.list() }),
  );

  app.get(
    '/v1/topics/:topic',
    {
      config: { access: 'authenticated' },
      schema: { summary: 'Get a registered topic', tags: ['topics'], params: topicParams, response: { 200: topicView, ...errors(400, 401, 404) } },
    },
    async (request) => {
      const { topic } = request.params as { topic: string };
      return topics.get(topic) ?? notRegistered(topic);
    },
  );

  app.delete(
    '/v1/topics/:topic',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Unregister a topic',
        description: 'Its events stay in the log; publishing to it is no longer validated (and refused in strict mode).',
        tags: ['topics'],
        params: topicParams,
        response: { 204: { type: 'null', description: 'Unregistered' }, ...errors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const { topic } = request.params as { topic: string };
      if (!(await topics.unregister(topic))) notRegistered(topic);
      return reply.code(204).send();
    },
  );
}

function notRegistered(topic: string): never {
  throw new BusbarError('BUSBAR_ERR_NOT_FOUND', `topic "${topic}" is not registered`, { details: { topic } });
}
