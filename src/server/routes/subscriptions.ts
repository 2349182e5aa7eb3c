import type { FastifyInstance } from 'fastify';
import type { Bus } from '../../core/bus-types.ts';
import { toCloudEvent } from '../../core/cloudevents.ts';
import type { Lag } from '../../core/log-reader.ts';
import type { SubscriptionStats } from '../../core/subscription-options.ts';
import { emptyBodyAsObject } from '../validation.ts';
import type { RouteDependencies } from './route-dependencies.ts';
import { cloudEvent, errors } from './schemas.ts';

/** A subscription as `GET /v1/subscriptions` shows it. */
export interface SubscriptionView {
  name: string;
  patterns: string[];
  /** True when it reads the log from a checkpoint (survives restarts). */
  durable: boolean;
  stats: SubscriptionStats;
  /** How far behind the log it is; durable subscriptions only. */
  lag?: Lag;
}

/**
 * The bus's subscriptions with their stats and, for durable ones, their lag.
 *
 * @example
 * ```ts
 * for (const view of await subscriptionViews(bus)) console.log(view.name, view.lag?.events);
 * ```
 */
export async function subscriptionViews(bus: Bus): Promise<SubscriptionView[]> {
  return Promise.all(
    bus.stats().subscriptions.map(async (stats) => {
      // The bus tells a durable subscription from the others only by
      // whether it can measure its lag.
      const lag = await bus.lag(stats.name).catch(() => undefined);
      const view: SubscriptionView = { name: stats.name, patterns: stats.patterns, durable: lag !== undefined, stats };
      if (lag !== undefined) view.lag = lag;
      return view;
    }),
  );
}

/**
 * `GET /v1/subscriptions`, `GET /v1/dead-letters` and
 * `POST /v1/dead-letters/redrive`; all need the admin right.
 *
 * @example
 * ```ts
 * registerSubscriptionRoutes(app, dependencies);
 * // curl -X POST localhost:2872/v1/dead-letters/redrive -H 'authorization: Bearer …' -H 'content-type: application/json' -d '{"subscription":"mailer"}'
 * ```
 */
export function registerSubscriptionRoutes(app: FastifyInstance, { context }: RouteDependencies): void {
  const { bus } = context;
  app.get(
    '/v1/subscriptions',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'List subscriptions with their stats and lag',
        tags: ['subscriptions'],
        response: {
          200: {
            type: 'object',
            properties: {
              subscriptions: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    name: { type: 'string' },
                    patterns: { type: 'array', items: { type: 'string' } },
                    durable: { type: 'boolean' },
                    stats: { type: 'object', additionalProperties: true },
                    lag: {
                      type: 'object',
                      properties: { checkpoint: { type: 'integer' }, head: { type: 'integer' }, events: { type: 'integer' }, seconds: { type: 'number' } },
                    },
                  },
                },
              },
            },
          },
          ...errors(401, 403),
        },
      },
    },
    async () => ({ subscriptions: await subscriptionViews(bus) }),
  );

  app.get(
    '/v1/dead-letters',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'List dead letters',
        tags: ['subscriptions'],
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            subscription: { type: 'string', description: 'Only this subscription’s.' },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              deadLetters: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    id: { type: 'string', description: 'The dead letter’s id (not the event’s).' },
                    subscription: { type: 'string' },
                    attempts: { type: 'integer' },
                    failedAt: { type: 'string' },
                    error: { type: 'object', properties: { name: { type: 'string' }, message: { type: 'string' }, code: { type: 'string' } } },
                    event: cloudEvent,
                  },
                },
              },
            },
          },
          ...errors(400, 401, 403),
        },
      },
    },
    async (request) => {
      const query = request.query as { subscription?: string; limit: number };
      const letters = bus.deadLetters({ subscription: query.subscription, limit: query.limit });
      return {
        deadLetters: letters.map((letter) => ({
          id: letter.id,
          subscription: letter.subscription,
          attempts: letter.attempts,
          failedAt: letter.failedAt,
          error: { name: letter.error.name, message: letter.error.message, code: (letter.error as { code?: unknown }).code },
          event: toCloudEvent(letter.event),
        })),
      };
    },
  );

  app.post(
    '/v1/dead-letters/redrive',
    {
      config: { access: 'admin' },
      preValidation: emptyBodyAsObject,
      schema: {
        summary: 'Redrive dead letters',
        description: 'Hands the chosen dead letters (all, one subscription’s, or by dead-letter id) back to their subscriptions.',
        tags: ['subscriptions'],
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            subscription: { type: 'string' },
            ids: { type: 'array', items: { type: 'string' }, maxItems: 10_000, description: 'Dead-letter ids.' },
          },
        },
        response: {
          200: { type: 'object', properties: { ids: { type: 'array', items: { type: 'string' }, description: 'Ids of the redriven events.' } } },
          ...errors(400, 401, 403, 415, 429),
        },
      },
    },
    async (request) => {
      const body = request.body as { subscription?: string; ids?: string[] };
      const receipts = await bus.redrive({ subscription: body.subscription, ids: body.ids });
      return { ids: receipts.map((receipt) => receipt.id) };
    },
  );
}
