import swagger from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import type { RouteAccess } from '../context.ts';

/**
 * Registers @fastify/swagger, which collects every route registered after
 * it; call it before the routes. Routes that need a key are marked with the
 * bearer scheme; streaming endpoints (access `self`) also take `?token=`.
 *
 * @example
 * ```ts
 * await registerOpenApi(app);
 * registerEventRoutes(app, dependencies);
 * ```
 */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Busbar HTTP API',
        version: '1',
        description: 'Publish, read and manage events. Errors are { "error": { "code", "message" } }; codes are listed in docs/errors.md.',
      },
      components: {
        securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'An API key, when the server has keys configured.' } },
      },
    },
    transform: ({ schema, url, route }) => {
      const access: RouteAccess = route.config?.access ?? 'authenticated';
      const security = access === 'public' ? [] : [{ bearerAuth: [] }];
      return { schema: { ...schema, security } as typeof schema, url };
    },
  });
}

/**
 * `GET /v1/openapi.json`: the OpenAPI 3 document of the HTTP API, generated
 * from the same route schemas that validate requests.
 *
 * @example
 * ```ts
 * registerOpenApiRoute(app);
 * // curl localhost:2872/v1/openapi.json
 * ```
 */
export function registerOpenApiRoute(app: FastifyInstance): void {
  app.get('/v1/openapi.json', { config: { access: 'authenticated' }, schema: { hide: true } }, async () => app.swagger());
}
