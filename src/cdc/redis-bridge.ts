import { BusbarError } from '../core/errors.ts';
import type { BusbarEvent } from '../core/event.ts';
import type { ChangeData } from './change.ts';
import type { CdcHandler } from './change-sink.ts';

/** What the bridge needs of a Redis client: node-redis's `publish` (a client you connected yourself). */
export interface RedisPublisher {
  publish(channel: string, message: string): Promise<unknown>;
}

/** Options of {@link createRedisBridge}: a `url` (the bridge owns the client) or a connected `client` (you do). */
export type RedisBridgeOptions = (
  | { url: string; client?: undefined }
  | { client: RedisPublisher; url?: undefined }
) & {
  /** The channel of a change; default `<schema>.<table>.cdc_events` with the names as they are (the seed's naming). */
  channel?: string | ((change: ChangeData) => string);
  /** A publish Redis has not confirmed within this many ms fails, so capture retries it. Default 10000. */
  timeout?: number;
};

/** A CDC handler that republishes every change to Redis. */
export interface RedisBridge extends CdcHandler {
  /** Connects (when the bridge owns the client), so a wrong URL fails at start, not on the first change. */
  onStart(): Promise<void>;
  /** Publishes the change; resolves once Redis took it, so capture confirms it only then. */
  onEvent(event: BusbarEvent<ChangeData>): Promise<void>;
  /** Closes the client the bridge opened (a client you passed stays open). */
  onClose(): Promise<void>;
}

/** The JSON each change is published as: the seed's payload plus where the change sits. */
export interface RedisChangeMessage {
  timestamp: string;
  schema: string;
  table: string;
  action: ChangeData['action'];
  id: unknown;
  data: ChangeData['data'];
  changes: ChangeData['changes'];
  old: ChangeData['old'];
  txid: string;
  lsn: string;
  index: number;
  last: boolean;
  /** Present only when some columns' values are unknown (see `ChangeData.unchanged`). */
  unchanged?: string[];
}

/** The module shape the bridge loads: node-redis's `createClient`. */
export interface RedisDriver {
  createClient(options: {
    url: string;
    socket: { reconnectStrategy: (retries: number, cause: Error) => number | Error };
  }): RedisPublisher & {
    connect(): Promise<unknown>;
    close(): Promise<void>;
    on(event: 'error', listener: (error: Error) => void): unknown;
  };
}

/**
 * A Redis bridge for change data capture: each change is published as JSON
 * (the seed's `timestamp`, `schema`, `table`, `action`, `id`, `data`,
 * `changes`, plus `old`, `txid`, `lsn`, `index`, `last`) to the channel
 * `<schema>.<table>.cdc_events`. Each publish is awaited, so a change counts
 * as delivered only once Redis accepted it (at-least-once: after a crash a
 * change may be published again, with the same `lsn` and `index`).
 *
 * Uses the official `redis` package (an optional peer: `npm i redis`),
 * loaded on first use; without it, `onStart` fails with
 * `BUSBAR_ERR_MISSING_DRIVER`.
 *
 * @example
 * ```ts
 * import { createPostgresCdc, createRedisBridge } from 'busbar/cdc';
 *
 * const cdc = createPostgresCdc({
 *   connectionString: process.env.DATABASE_URL!,
 *   tables: ['public.person'],
 *   handlers: [createRedisBridge({ url: 'redis://127.0.0.1:6379' })],
 * });
 * await cdc.start(); // SUBSCRIBE public.person.cdc_events to watch
 * ```
 */
export function createRedisBridge(options: RedisBridgeOptions): RedisBridge {
  return redisBridge(options, loadRedis);
}

/** {@link createRedisBridge} with the driver loader injectable (tests). */
export function redisBridge(options: RedisBridgeOptions, loadDriver: () => Promise<RedisDriver>): RedisBridge {
  const hasUrl = typeof options?.url === 'string' && options.url.length > 0;
  const hasClient = typeof options?.client?.publish === 'function';
  if (hasUrl === hasClient) {
    throw new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', 'createRedisBridge needs either a url or a connected client (not both)');
  }
  const timeout = options.timeout ?? 10_000;
  if (!Number.isSafeInteger(timeout) || timeout <= 0) {
    throw new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', `timeout must be a positive integer, got ${String(options.timeout)}`);
  }
  const channelOf = channelNaming(options.channel);
  let connecting: Promise<RedisPublisher> | undefined;
  let owned: Awaited<ReturnType<RedisDriver['createClient']>> | undefined;

  const ready = (): Promise<RedisPublisher> => {
    if (options.client !== undefined) return Promise.resolve(options.client);
    connecting ??= (async () => {
      const driver = await loadDriver();
      let connected = false;
      const client = driver.createClient({
        url: options.url!,
        // node-redis retries for ever by default, even a first connect to a
        // wrong address: give up on the first one after a few tries (a clear
        // error at start), and once connected, reconnect with backoff.
        socket: {
          reconnectStrategy: (retries, cause) =>
            connected ? Math.min(100 * 2 ** retries, 5000) : retries >= FIRST_CONNECT_TRIES ? cause : 200,
        },
      });
      // node-redis reconnects by itself and reports each failure here; unheard, it would crash the process.
      client.on('error', () => {});
      try {
        await client.connect();
        connected = true;
      } catch (error) {
        throw new BusbarError('BUSBAR_ERR_UNREACHABLE', `the Redis bridge could not connect to ${redacted(options.url!)}: ${(error as Error).message}`, {
          cause: error,
        });
      }
      owned = client;
      return client;
    })();
    connecting.catch(() => (connecting = undefined));
    return connecting;
  };

  return {
    async onStart() {
      await ready();
    },
    async onEvent(event) {
      const change = event.data;
      const client = await ready();
      await withTimeout(client.publish(channelOf(change), JSON.stringify(messageOf(change))), timeout, change);
    },
    async onClose() {
      const client = owned;
      owned = undefined;
      connecting = undefined;
      await client?.close();
    },
  };
}

/** The published JSON of a change. */
export function messageOf(change: ChangeData): RedisChangeMessage {
  const message: RedisChangeMessage = {
    timestamp: change.timestamp,
    schema: change.schema,
    table: change.table,
    action: change.action,
    id: change.id,
    data: change.data,
    changes: change.changes,
    old: change.old,
    txid: change.txid,
    lsn: change.lsn,
    index: change.index,
    last: change.last,
  };
  if (change.unchanged.length > 0) message.unchanged = [...change.unchanged];
  return message;
}

function channelNaming(channel: RedisBridgeOptions['channel']): (change: ChangeData) => string {
  if (channel === undefined) return (change) => `${change.schema}.${change.table}.cdc_events`;
  if (typeof channel === 'function') return channel;
  if (typeof channel === 'string' && channel.length > 0) return () => channel;
  throw new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', 'channel must be a non-empty string or a function of the change');
}

async function withTimeout(publish: Promise<unknown>, ms: number, change: ChangeData): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new BusbarError('BUSBAR_ERR_UNREACHABLE', `Redis did not confirm the publish of ${change.lsn}/${change.index} within ${ms} ms`, {
            details: { lsn: change.lsn, index: change.index },
          }),
        ),
      ms,
    );
  });
  try {
    await Promise.race([publish, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** A URL without its password, for messages. */
function redacted(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'the given url';
  }
}

const FIRST_CONNECT_TRIES = 3;

/**
 * Loads the driver through `importer` once; a missing package becomes
 * `BUSBAR_ERR_MISSING_DRIVER` naming `redis`.
 */
export function redisLoader(importer: () => Promise<unknown>): () => Promise<RedisDriver> {
  let loading: Promise<RedisDriver> | undefined;
  return () => {
    loading ??= importer().then(
      (module) => module as RedisDriver,
      (error: unknown) => {
        loading = undefined;
        if ((error as { code?: unknown }).code !== 'ERR_MODULE_NOT_FOUND') throw error;
        throw new BusbarError('BUSBAR_ERR_MISSING_DRIVER', 'the Redis bridge needs the Redis client: npm i redis', {
          cause: error,
          details: { package: 'redis' },
        });
      },
    );
    return loading;
  };
}

// Loaded on first use, so importing `busbar/cdc` never needs `redis`.
const loadRedis = redisLoader(() => import('redis'));
