import type { FastifyInstance } from 'fastify';
import { registerEventRoutes } from './events.ts';
import { registerObservabilityRoutes } from './observability.ts';
import { registerOpenApiRoute } from './openapi.ts';
import type { RouteDependencies } from './route-dependencies.ts';
import { registerStreamRoutes } from './streams.ts';
import { registerSubscriptionRoutes } from './subscriptions.ts';
import { registerTopicRoutes } from './topics.ts';

export { registerOpenApi } from './openapi.ts';
export type { RouteDependencies } from './route-dependencies.ts';

/**
 * Every HTTP route of the API (the streaming endpoints register themselves).
 *
 * @example
 * ```ts
 * await registerOpenApi(app);
 * registerHttpRoutes(app, { context, publisher, topics, meters });
 * ```
 */
export function registerHttpRoutes(app: FastifyInstance, dependencies: RouteDependencies): void {
  registerEventRoutes(app, dependencies);
  registerStreamRoutes(app, dependencies);
  registerTopicRoutes(app, dependencies);
  registerSubscriptionRoutes(app, dependencies);
  registerObservabilityRoutes(app, dependencies);
  registerOpenApiRoute(app);
}
