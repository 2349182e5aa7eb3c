import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { createBus } from '../../core/bus.ts';
import type { Bus } from '../../core/bus-types.ts';
import { serializeEvent } from '../../core/cloudevents.ts';
import { BusbarError } from '../../core/errors.ts';
import { createEventId } from '../../core/event-id.ts';
import { compilePattern } from '../../core/pattern.ts';
import type { EventStore } from '../../store/event-store.ts';
import { createMemoryStore } from '../../store/memory/index.ts';
import { createSqliteStore } from '../../store/sqlite/index.ts';
import type { Principal, Right, ServerContext, ServerLimits } from '../context.ts';
import { registerStreaming } from './index.ts';

/** What one API key of the fixture may do: patterns per right. */
export interface FixtureKey {
  name: string;
  publish?: string[];
  subscribe?: string[];
  admin?: boolean;
}

export interface FixtureOptions {
  /** Default `sqlite` (a temporary file). */
  store?: 'sqlite' | 'memory';
  limits?: Partial<ServerLimits>;
  /** Secret → rights. Without keys every request is anonymous and may do anything. */
  keys?: Record<string, FixtureKey>;
  /** Adds routes before the server starts (a test page, say). */
  routes?: (app: FastifyInstance) => void;
}

export interface StreamingFixture {
  readonly app: FastifyInstance;
  readonly context: ServerContext;
  readonly store: EventStore;
  readonly bus: Bus;
  /** `http://127.0.0.1:<port>` */
  readonly baseUrl: string;
  /** `ws://127.0.0.1:<port>/v1/ws` */
  readonly wsUrl: string;
  /** Publishes `count` events of `topic` (data `{ n }` from `first`) and returns their positions. */
  publishMany(count: number, topic?: string, extra?: Record<string, unknown>, first?: number): Promise<number[]>;
  close(): Promise<void>;
}

export const DEFAULT_TEST_LIMITS: ServerLimits = {
  maxBodyBytes: 1024 * 1024,
  maxMessageBytes: 64 * 1024,
  sendBufferBytes: 1024 * 1024,
  heartbeatMs: 30_000,
};

/**
 * A small Fastify app with only the streaming endpoints, over a real store
 * and bus, listening on 127.0.0.1 at a random port: the streaming side's
 * stand-in for the full server, with a ServerContext that follows the
 * contract in `../context.ts`.
 */
export async function startStreamingFixture(options: FixtureOptions = {}): Promise<StreamingFixture> {
  const directory = mkdtempSync(join(tmpdir(), 'busbar-streaming-'));
  const store: EventStore =
    options.store === 'memory'
      ? createMemoryStore()
      : createSqliteStore({ path: join(directory, 'events.db'), synchronous: 'normal' });
  const bus = createBus({ store, source: 'busbar-test' });
  // forceCloseConnections: a connection a client opened without sending a
  // request yet counts as busy to Node until headersTimeout (60 s+), which
  // would hold app.close() that long. The streaming side has already said
  // goodbye to its clients in preClose by then.
  const app = Fastify({ logger: false, forceCloseConnections: true });
  const context = fixtureContext(app, bus, store, { ...DEFAULT_TEST_LIMITS, ...options.limits }, options.keys);
  await registerStreaming(app, context);
  options.routes?.(app);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  let closed = false;
  return {
    app,
    context,
    store,
    bus,
    baseUrl: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/v1/ws`,
    publishMany: async (count, topic = 'test.happened', extra = {}, first = 1) => {
      const events = Array.from({ length: count }, (_, n) => ({ type: topic, data: { n: first + n }, ...extra }));
      return (await context.publish(anyone, events)).map((accepted) => accepted.position);
    },
    close: async () => {
      if (closed) return;
      closed = true;
      await app.close();
      await bus.close();
      await store.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

const anyone: Principal = { name: 'anonymous', can: () => true };

function fixtureContext(
  app: FastifyInstance,
  bus: Bus,
  store: EventStore,
  limits: ServerLimits,
  keys: Record<string, FixtureKey> | undefined,
): ServerContext {
  return {
    bus,
    store,
    limits,
    log: app.log,
    startedAt: Date.now(),
    meters: { gauge: () => {}, counter: () => ({ add: () => {} }) },
    authenticate(authorization, queryToken) {
      if (keys === undefined) return anyone;
      const secret = authorization?.startsWith('Bearer ') ? authorization.slice(7) : queryToken;
      const key = secret === undefined ? undefined : keys[secret];
      if (key === undefined) throw new BusbarError('BUSBAR_ERR_UNAUTHORIZED', 'a valid API key is required');
      return keyPrincipal(key);
    },
    async publish(principal, events) {
      const normalized = events.map((input) => {
        if (typeof input !== 'object' || input === null) {
          throw new BusbarError('BUSBAR_ERR_INVALID_EVENT', 'an event must be a JSON object');
        }
        const event = input as Record<string, unknown>;
        const complete =
          event.specversion === undefined
            ? { specversion: '1.0', id: createEventId(), source: 'busbar-test', ...event }
            : event;
        if (typeof complete.type === 'string' && !principal.can('publish', complete.type)) {
          throw new BusbarError('BUSBAR_ERR_FORBIDDEN', `"${principal.name}" may not publish "${complete.type}"`);
        }
        return complete;
      });
      // Published in one turn, the appends share a commit and keep their order.
      const receipts = await Promise.all(normalized.map((event) => bus.publishEvent(event)));
      return receipts.map((receipt) => ({ id: receipt.id, position: receipt.sequence! }));
    },
    serialize: serializeEvent,
  };
}

function keyPrincipal(key: FixtureKey): Principal {
  return {
    name: key.name,
    can(right: Right, topic?: string) {
      if (right === 'admin') return key.admin === true;
      const granted = right === 'publish' ? key.publish : key.subscribe;
      if (granted === undefined || topic === undefined) return false;
      return right === 'publish'
        ? granted.some((pattern) => compilePattern(pattern).matches(topic))
        : granted.some((pattern) => covers(pattern.split('.'), topic.split('.')));
    },
  };
}

/** True when every topic `pattern` matches is also matched by `granted`. */
function covers(granted: string[], pattern: string[]): boolean {
  for (let i = 0; i < granted.length; i++) {
    if (granted[i] === '>') return pattern.length > i;
    if (i >= pattern.length || pattern[i] === '>') return false;
    if (granted[i] !== '*' && (pattern[i] === '*' || granted[i] !== pattern[i])) return false;
  }
  return granted.length === pattern.length;
}
