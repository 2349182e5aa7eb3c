import type { FastifyInstance } from 'fastify';
import { checkHealth } from '../health.ts';
import { PROMETHEUS_CONTENT_TYPE, prometheusText } from '../metrics.ts';
import type { RouteDependencies } from './route-dependencies.ts';
import { errors } from './schemas.ts';

const healthReport = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['ok', 'degraded', 'unavailable'] },
    ready: { type: 'boolean' },
    uptime_seconds: { type: 'number' },
    checks: { type: 'object', additionalProperties: true, description: 'store (latencyMs) and bus, each with a status.' },
  },
} as const;

/**
 * `GET /v1/stats` and `GET /metrics` (admin), and the health probes
 * `GET /v1/health`, `/v1/health/live`, `/v1/health/ready` (no key needed).
 *
 * @example
 * ```ts
 * registerObservabilityRoutes(app, dependencies);
 * // curl localhost:2872/v1/health/ready
 * ```
 */
export function registerObservabilityRoutes(app: FastifyInstance, { context, meters }: RouteDependencies): void {
  app.get(
    '/v1/stats',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Bus and server statistics',
        description:
          'The bus’s stats (total_published, total_delivered, active_subscribers, queue_size, events_by_type, average_delivery_latency_ms, ' +
          'uptime_seconds, …), the log head and the server’s own counts (streaming connections…).',
        tags: ['observability'],
        response: {
          200: {
            type: 'object',
            additionalProperties: true,
            properties: {
              total_published: { type: 'integer' },
              total_delivered: { type: 'integer' },
              active_subscribers: { type: 'integer' },
              queue_size: { type: 'integer' },
              events_by_type: { type: 'object', additionalProperties: { type: 'integer' } },
              average_delivery_latency_ms: { type: 'number' },
              uptime_seconds: { type: 'number' },
              log_head: { type: 'integer' },
              server: { type: 'object', additionalProperties: { type: 'number' } },
            },
          },
          ...errors(401, 403),
        },
      },
    },
    async () => ({ ...context.bus.stats(), log_head: await context.store.head(), server: meters.snapshot() }),
  );

  app.get(
    '/metrics',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Prometheus metrics',
        tags: ['observability'],
        produces: [PROMETHEUS_CONTENT_TYPE],
        response: { 200: { type: 'string', description: 'Prometheus text exposition format.' }, ...errors(401, 403) },
      },
    },
    async (_request, reply) => reply.type(PROMETHEUS_CONTENT_TYPE).send(await prometheusText(context, meters)),
  );

  const probe = { config: { access: 'public' as const, rateLimit: false } };
  app.get(
    '/v1/health',
    { ...probe, schema: { summary: 'Health with per-component checks', tags: ['observability'], response: { 200: healthReport, 503: healthReport } } },
    async (_request, reply) => {
      const report = await checkHealth(context);
      return reply.code(report.ready ? 200 : 503).send(report);
    },
  );
  app.get(
    '/v1/health/ready',
    { ...probe, schema: { summary: 'Readiness: 200 when the store answers and the bus is open', tags: ['observability'], response: { 200: healthReport, 503: healthReport } } },
    async (_request, reply) => {
      const report = await checkHealth(context);
      return reply.code(report.ready ? 200 : 503).send(report);
    },
  );
  app.get(
    '/v1/health/live',
    {
      ...probe,
      schema: {
        summary: 'Liveness: 200 while the process answers',
        tags: ['observability'],
        response: { 200: { type: 'object', properties: { status: { type: 'string' }, uptime_seconds: { type: 'number' } } } },
      },
    },
    async () => ({ status: 'ok', uptime_seconds: (Date.now() - context.startedAt) / 1000 }),
  );
}
