import type { AddressInfo } from 'node:net';
import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyInstance, LogController } from 'fastify';
import { createBus } from '../core/bus.ts';
import type { Bus } from '../core/bus-types.ts';
import { serializeEvent } from '../core/cloudevents.ts';
import { BusbarError } from '../core/errors.ts';
import type { BusbarEvent } from '../core/event.ts';
import type { EventStore } from '../store/event-store.ts';
import { createSqliteStore } from '../store/sqlite/index.ts';
import { type ApiKey, Authenticator } from './auth.ts';
import { installBodyParsers } from './body-parsers.ts';
import { openServerCdc, type ServerCdc } from './cdc-capture.ts';
import type { ServerCdcOptions } from './cdc-config.ts';
import { DEFAULT_LIMITS, type LogLevel } from './config.ts';
import type { RouteAccess, ServerContext, ServerLimits } from './context.ts';
import { answerClientError, installErrorReplies } from './error-replies.ts';
import { MeterRegistry } from './meters.ts';
import { Publisher } from './publisher.ts';
import { registerCdcRoute } from './routes/cdc.ts';
import { registerHttpRoutes, registerOpenApi } from './routes/index.ts';
import { registerStreaming, SSE_PATH, streamingStats, WS_PATH } from './streaming/index.ts';
import { TopicRegistry } from './topic-registry.ts';
import { installValidation } from './validation.ts';

/** What `createServer` takes; `resolveServerConfig` produces a compatible object. */
export interface ServerOptions {
  /** Default `127.0.0.1`. */
  host?: string;
  /** Default 2872; 0 picks a free port. */
  port?: number;
  /** An open store; the server then does not close it. */
  store?: EventStore;
  /** A bus on `store`, from an embedding program; the server then does not close it. */
  bus?: Bus;
  /** The SQLite file to open when no `store` or `postgres` is given. Default `./busbar.db`. */
  data?: string;
  /** A PostgreSQL URL to open the log in instead of SQLite (needs `pg`). */
  postgres?: string;
  /** When given, every endpoint but `/v1/health*` needs one of these keys. */
  apiKeys?: ApiKey[];
  /** Requests per `timeWindow` ms and key (per client address without keys). Default: none. */
  rateLimit?: { max: number; timeWindow: number };
  limits?: Partial<ServerLimits>;
  /** Only events of registered topics are accepted. Default false. */
  strict?: boolean;
  /** Pino log level, or false for no logs. Default `info`. */
  logger?: LogLevel | false;
  /** The CloudEvents `source` of events published without one. Default `busbar`. */
  source?: string;
  /**
   * Browser origins allowed to call the API from pages of other sites
   * (`['https://app.example.com']`, or `['*']`). Default none: no CORS
   * headers, so only same-origin pages (and non-browser clients) can call it.
   */
  corsOrigins?: readonly string[];
  /**
   * Captures a PostgreSQL database's row changes into the server's bus
   * (`createPostgresCdc`'s options but `bus`; needs `pg`): started once the
   * server listens, closed before the bus. `GET /v1/cdc` shows its status.
   */
  cdc?: ServerCdcOptions;
}

/** A server built by {@link createServer}. */
export interface BusbarServer {
  readonly app: FastifyInstance;
  readonly context: ServerContext;
  /** Starts listening; resolves with the base URL (`http://127.0.0.1:2872`). */
  listen(): Promise<{ url: string }>;
  /**
   * Graceful: stops accepting, lets requests in flight finish, closes
   * streaming connections with a going-away, then closes the bus and the
   * store if the server opened them.
   */
  close(): Promise<void>;
  /** The base URL once listening; undefined before. */
  readonly url: string | undefined;
  /** Every route the server registered (HEAD twins left out), with who may call it. */
  readonly endpoints: readonly Endpoint[];
}

/** One registered route. */
export interface Endpoint {
  readonly method: string;
  /** As registered, with parameters: `/v1/events/:id`. */
  readonly url: string;
  readonly access: RouteAccess;
}

/**
 * Builds the Busbar server: the HTTP API under `/v1`, Server-Sent Events and
 * WebSocket streaming, auth, rate limits, stats, health and `/metrics`, on a
 * durable log (a SQLite file by default). It is ready to `listen()` when
 * the promise resolves: the store is open and stored topic registrations
 * are applied.
 *
 * @example
 * ```ts
 * import { createServer } from 'busbar/server';
 *
 * const server = await createServer({ port: 0, data: 'events.db' });
 * const { url } = await server.listen();
 * await fetch(`${url}/v1/events`, {
 *   method: 'POST',
 *   headers: { 'content-type': 'application/json' },
 *   body: JSON.stringify({ type: 'order.created', data: { id: 'o-1' } }),
 * });
 * await server.close();
 * ```
 */
export async function createServer(options: ServerOptions = {}): Promise<BusbarServer> {
  const limits = limitsOf(options.limits);
  const authenticator = new Authenticator(options.apiKeys ?? []);
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 2872;
  if (!Number.isSafeInteger(port) || port < 0 || port > 65_535) throw invalid('port', 'must be an integer from 0 to 65535');
  const { store, ownsStore } = await openStore(options);
  const app = Fastify({
    logger: options.logger === false ? false : { level: options.logger ?? 'info' },
    bodyLimit: limits.maxBodyBytes,
    // One log line per request costs more than the request; errors are logged.
    logController: new LogController({ disableRequestLogging: true }),
    // Topics and stream ids may be 256 characters, event ids longer.
    routerOptions: { maxParamLength: 1024 },
    clientErrorHandler: answerClientError,
  });
  let shuttingDown = false;
  // A response sent while closing tells the client not to reuse its
  // connection, so keep-alive sockets do not hold close() open.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (shuttingDown) reply.header('connection', 'close');
    done(null, payload);
  });
  const ownsBus = options.bus === undefined;
  let bus = options.bus;
  const endpoints: Endpoint[] = [];
  try {
    bus ??= createBus({
      store,
      source: options.source,
      strict: options.strict,
      onError: (error, origin) => app.log.warn({ err: error }, origin),
    });
    const running = bus;
    await running.ready;
    const { context, capture } = await assemble(app, { options, limits, authenticator, bus: running, store, endpoints });
    let url: string | undefined;
    let closing: Promise<void> | undefined;
    return {
      app,
      context,
      endpoints,
      get url() {
        return url;
      },
      async listen() {
        await app.listen({ host, port });
        const address = app.server.address() as AddressInfo;
        url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
        capture?.start();
        return { url };
      },
      close() {
        closing ??= (async () => {
          shuttingDown = true;
          // Capture stops first: what the bus committed is confirmed to PostgreSQL while the bus is still open.
          await capture?.close();
          // Requests in flight get a grace period; then every connection is
          // cut, or a socket that never sent a request would hold close()
          // for Node's 60 s header timeout.
          const cut = setTimeout(() => app.server.closeAllConnections(), SHUTDOWN_GRACE_MS);
          try {
            await app.close();
          } finally {
            clearTimeout(cut);
          }
          if (ownsBus) await running.close();
          if (ownsStore) await store.close();
        })();
        return closing;
      },
    };
  } catch (error) {
    await app.close().catch(() => {});
    if (ownsBus) await bus?.close().catch(() => {});
    if (ownsStore) await store.close().catch(() => {});
    throw error;
  }
}

/** How long close() lets requests in flight finish before it cuts their connections. */
const SHUTDOWN_GRACE_MS = 5_000;

interface Parts {
  options: ServerOptions;
  limits: ServerLimits;
  authenticator: Authenticator;
  bus: Bus;
  store: EventStore;
  endpoints: Endpoint[];
}

/**
 * Wires the pieces together in the order Fastify needs: handlers, hooks and
 * plugins before routes. The change capture, if any, is built (not started).
 */
async function assemble(
  app: FastifyInstance,
  { options, limits, authenticator, bus, store, endpoints }: Parts,
): Promise<{ context: ServerContext; capture: ServerCdc | undefined }> {
  installValidation(app);
  installBodyParsers(app);
  installErrorReplies(app, limits.maxBodyBytes);
  app.decorateRequest('principal', null);
  // The streaming endpoints check credentials themselves: they take
  // `?token=` from browsers, and report failures in their own way.
  app.addHook('onRoute', (route) => {
    if (route.url === SSE_PATH || route.url === WS_PATH) route.config = { ...route.config, access: route.config?.access ?? 'self' };
    // CORS preflights: browsers send them without credentials.
    if (route.method === 'OPTIONS') route.config = { ...route.config, access: 'public' };
    for (const method of [route.method].flat()) {
      if (method !== 'HEAD') endpoints.push({ method, url: route.url ?? route.path, access: route.config?.access ?? 'authenticated' });
    }
  });
  if (options.corsOrigins !== undefined && options.corsOrigins.length > 0) {
    // Before auth: a browser's preflight carries no credentials.
    await app.register(cors, {
      origin: options.corsOrigins.includes('*') ? true : [...options.corsOrigins],
      methods: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE'],
      exposedHeaders: ['retry-after', 'location'],
      maxAge: 600,
    });
  }
  app.addHook('onRequest', authenticator.hook());
  if (options.rateLimit !== undefined) {
    const { max, timeWindow } = options.rateLimit;
    await app.register(rateLimit, {
      max,
      timeWindow,
      keyGenerator: (request) => (authenticator.enabled && request.principal !== null ? `key:${request.principal.name}` : `ip:${request.ip}`),
      errorResponseBuilder: (_request, limit) =>
        new BusbarError('BUSBAR_ERR_RATE_LIMITED', `too many requests: the limit is ${limit.max} per ${limit.after}; retry later`, {
          details: { limit: limit.max, retryAfterSeconds: Math.ceil(limit.ttl / 1000) },
        }),
    });
  }
  await registerOpenApi(app);
  const strict = options.strict ?? false;
  const publisher = new Publisher(bus, { strict, busIsStrict: strict && options.bus === undefined, source: options.source ?? 'busbar' });
  const topics = await TopicRegistry.open(bus, store);
  const meters = new MeterRegistry();
  const context: ServerContext = {
    bus,
    store,
    limits,
    log: app.log,
    startedAt: Date.now(),
    meters,
    authenticate: (authorization, queryToken) => authenticator.authenticate(authorization, queryToken),
    publish: (principal, events) => publisher.publish(principal, events),
    serialize: serializeOnce,
  };
  registerHttpRoutes(app, { context, publisher, topics, meters });
  const capture = options.cdc === undefined ? undefined : await openServerCdc(options.cdc, bus, app.log, meters);
  registerCdcRoute(app, () => capture?.status() ?? { enabled: false });
  await registerStreaming(app, context);
  meters.gauge('streaming_connections', 'Open Server-Sent Events and WebSocket connections.', () => streamingStats(app).connections);
  meters.gauge('streaming_live_subscriptions', 'Streaming subscriptions following the live log.', () => streamingStats(app).liveSubscriptions);
  await app.ready();
  return { context, capture };
}

async function openStore(options: ServerOptions): Promise<{ store: EventStore; ownsStore: boolean }> {
  const given = [options.store !== undefined && 'store', options.data !== undefined && 'data', options.postgres !== undefined && 'postgres'].filter(Boolean);
  if (given.length > 1) throw invalid(String(given[1]), `cannot be combined with "${String(given[0])}": the log is kept in one store`);
  if (options.bus !== undefined && options.store === undefined) {
    throw invalid('bus', 'needs the store it publishes to, as option "store": the server reads the log from it');
  }
  if (options.store !== undefined) return { store: options.store, ownsStore: false };
  if (options.postgres !== undefined) {
    // Loaded only when asked for: it needs the optional `pg` driver.
    const { createPostgresStore } = await import('../store/postgres/index.ts');
    return { store: await createPostgresStore({ connectionString: options.postgres }), ownsStore: true };
  }
  return { store: createSqliteStore({ path: options.data ?? './busbar.db' }), ownsStore: true };
}

function limitsOf(given: Partial<ServerLimits> = {}): ServerLimits {
  const limits = { ...DEFAULT_LIMITS, ...given };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1) throw invalid(`limits.${name}`, `must be an integer ≥ 1, got ${String(value)}`);
  }
  return limits;
}

// Each event is serialised once however many responses and connections it goes to.
const serialized = new WeakMap<BusbarEvent, string>();

function serializeOnce(event: BusbarEvent): string {
  let json = serialized.get(event);
  if (json === undefined) {
    json = serializeEvent(event);
    serialized.set(event, json);
  }
  return json;
}

function invalid(option: string, problem: string): BusbarError {
  return new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', `option "${option}" ${problem}`, { details: { option } });
}
