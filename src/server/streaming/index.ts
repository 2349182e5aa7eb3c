import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.ts';
import { ConnectionRegistry } from './connection-registry.ts';
import { LiveHub } from './live-hub.ts';
import { registerSse } from './sse-endpoint.ts';
import { acceptWebSockets } from './ws-endpoint.ts';

export { SSE_PATH, SSE_RETRY_MS } from './sse-endpoint.ts';
export { QUERY_SUBSCRIPTION_ID, WS_PATH } from './ws-endpoint.ts';
export {
  CLOSE_GOING_AWAY,
  CLOSE_INTERNAL_ERROR,
  CLOSE_SLOW_CONSUMER,
  CLOSE_UNAUTHORIZED,
  MAX_SUBSCRIPTIONS,
} from './ws-session.ts';

/** Counts for stats and metrics. */
export interface StreamingStats {
  /** Open SSE responses and WebSockets. */
  readonly connections: number;
  /** Subscriptions following the live hub (catching-up ones join it when they reach it). */
  readonly liveSubscriptions: number;
  /** The last log position the live hub has handed out. */
  readonly hubPosition: number;
}

// Keyed by the HTTP server, which every encapsulated Fastify context shares.
const runtimes = new WeakMap<object, { registry: ConnectionRegistry; hub: LiveHub }>();

/** How long clients get to close after a going-away before they are dropped, ms. */
const SHUTDOWN_GRACE_MS = 2000;

/**
 * Adds the streaming endpoints to a Busbar server: `GET /v1/stream`
 * (Server-Sent Events) and `GET /v1/ws` (WebSocket), both fed by one live
 * reader of the log. On `app.close()` every connection is closed with a
 * going-away (WebSocket 1001, SSE end of response) before the HTTP server
 * stops, so clients reconnect elsewhere and resume. The protocol is in
 * `docs/protocol.md`.
 *
 * @example
 * ```ts
 * const app = Fastify();
 * await registerStreaming(app, context);
 * await app.listen({ host: '127.0.0.1', port: 2872 });
 * ```
 */
export async function registerStreaming(app: FastifyInstance, context: ServerContext): Promise<void> {
  const hub = new LiveHub({
    log: context.store,
    serialize: (event) => context.serialize(event),
    onError: (error) => context.log.error({ err: error }, 'live hub: reading the log failed; retrying'),
  });
  await hub.start();
  const registry = new ConnectionRegistry(context.limits.heartbeatMs);
  const runtime = { context, hub, registry };
  registerSse(app, runtime);
  const stopUpgrades = acceptWebSockets(app, runtime);
  runtimes.set(app.server, { registry, hub });
  // preClose, not onClose: Fastify's own onClose waits for the HTTP server
  // to close, which waits for these connections; closing them later would
  // never come.
  app.addHook('preClose', async () => {
    stopUpgrades();
    await registry.closeAll(SHUTDOWN_GRACE_MS);
    await hub.close();
  });
}

/**
 * Counts of the streaming side of a server built with
 * {@link registerStreaming}; zeros for an app without it.
 *
 * @example
 * ```ts
 * streamingStats(app).connections // 2
 * ```
 */
export function streamingStats(app: FastifyInstance): StreamingStats {
  const runtime = runtimes.get(app.server);
  if (runtime === undefined) return { connections: 0, liveSubscriptions: 0, hubPosition: 0 };
  return {
    connections: runtime.registry.size,
    liveSubscriptions: runtime.hub.size,
    hubPosition: runtime.hub.position,
  };
}
