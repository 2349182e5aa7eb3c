import type { FastifyBaseLogger } from 'fastify';
import type { CdcStatus } from '../cdc/cdc-options.ts';
import type { Bus } from '../core/bus-types.ts';
import type { ServerCdcOptions } from './cdc-config.ts';
import type { ServerMeters } from './context.ts';

/** One captured table as `GET /v1/cdc` shows it, with its initial snapshot when it has one. */
export interface CdcTableView {
  readonly schema: string;
  readonly name: string;
  readonly snapshot?: Omit<CdcStatus['snapshots'][number], 'schema' | 'table'>;
}

/**
 * `GET /v1/cdc`: the server's change capture, or `{ enabled: false }` when
 * it runs none. Facts not known yet (no health check so far, nothing
 * delivered) are left out.
 *
 * @example
 * ```ts
 * const view = cdcStatusView(cdc.status());
 * if (view.enabled && !view.connected) console.warn('capture is down:', view.lastError?.message);
 * ```
 */
export type CdcStatusView =
  | { readonly enabled: false }
  | {
      readonly enabled: true;
      readonly mode: CdcStatus['mode'];
      readonly state: CdcStatus['state'];
      readonly connected: boolean;
      /** True when every table of the database is captured; `tables` then lists those snapshotted so far. */
      readonly allTables: boolean;
      readonly tables: readonly CdcTableView[];
      readonly failedAttempts: number;
      readonly delivered: number;
      readonly lastDelivered?: NonNullable<CdcStatus['lastDelivered']>;
      /** The slot's `confirmed_flush_lsn` (replication) or the reader's checkpoint (trigger). */
      readonly confirmedPosition?: string;
      /** WAL bytes (replication) or change rows (trigger) not yet confirmed, and the age of the oldest in seconds. */
      readonly lag?: { readonly bytes?: number; readonly seconds?: number };
      readonly walStatus?: string;
      readonly retainedBytes?: number;
      readonly lastError?: NonNullable<CdcStatus['lastError']>;
      readonly warnings: readonly string[];
      /** When the watchdog last checked the database. */
      readonly checkedAt?: string;
    };

/** The server's running change capture. */
export interface ServerCdc {
  /** Starts capturing in the background (after the server listens). */
  start(): void;
  /** Stops capturing, confirming what the bus committed (before the bus closes). */
  close(): Promise<void>;
  status(): CdcStatusView;
}

/**
 * Builds the server's change capture into its own bus: every change becomes
 * an event in the log, so SSE and WebSocket subscribers get it. The capture
 * module (and `pg`) is loaded only here, when capture is configured.
 * Failures are logged and retried; the final give-up is logged as an error.
 *
 * @example
 * ```ts
 * const cdc = await openServerCdc({ connectionString, tables: ['orders'] }, bus, app.log, meters);
 * cdc.start();
 * ```
 */
export async function openServerCdc(options: ServerCdcOptions, bus: Bus, log: FastifyBaseLogger, meters: ServerMeters): Promise<ServerCdc> {
  const { createPostgresCdc } = await import('../cdc/index.ts');
  const capture = createPostgresCdc({
    ...options,
    bus,
    handlers: [
      // Not the connection string: it may hold a password.
      { onConnect: () => log.info({ cdc: { mode: capture.status().mode, tables: capture.status().tables } }, 'change capture streaming') },
      ...(options.handlers ?? []),
    ],
    onError: options.onError ?? ((error) => log.error({ err: error }, 'change capture gave up')),
    onWarning: options.onWarning ?? ((message) => log.warn(`change capture: ${message}`)),
  });
  meters.gauge('cdc_connected', 'Whether change capture is streaming from PostgreSQL (1) or not (0).', () => (capture.status().connected ? 1 : 0));
  meters.gauge('cdc_delivered', 'Change events change capture delivered into the bus since the server started.', () => capture.status().delivered);
  return {
    start: () => capture.start(),
    close: () => capture.close(),
    status: () => cdcStatusView(capture.status()),
  };
}

/**
 * A capture's `status()` as `GET /v1/cdc` answers it.
 *
 * @example
 * ```ts
 * cdcStatusView(cdc.status()); // { enabled: true, mode: 'replication', state: 'streaming', connected: true, … }
 * ```
 */
export function cdcStatusView(status: CdcStatus): CdcStatusView {
  const snapshots = new Map(status.snapshots.map((snapshot) => [`${snapshot.schema}\0${snapshot.table}`, snapshot]));
  const named = status.tables === 'all' ? status.snapshots.map((snapshot) => ({ schema: snapshot.schema, name: snapshot.table })) : status.tables;
  const tables = named.map((table): CdcTableView => {
    const found = snapshots.get(`${table.schema}\0${table.name}`);
    if (found === undefined) return { schema: table.schema, name: table.name };
    const { schema: _schema, table: _table, ...snapshot } = found;
    return { schema: table.schema, name: table.name, snapshot };
  });
  const health = status.health;
  const lag = health === undefined ? undefined : withoutUndefined({ bytes: health.lagBytes, seconds: health.lagSeconds });
  return withoutUndefined({
    enabled: true as const,
    mode: status.mode,
    state: status.state,
    connected: status.connected,
    allTables: status.tables === 'all',
    tables,
    failedAttempts: status.failedAttempts,
    delivered: status.delivered,
    lastDelivered: status.lastDelivered,
    confirmedPosition: health?.confirmedPosition,
    lag,
    walStatus: health?.walStatus,
    retainedBytes: health?.retainedBytes,
    lastError: status.lastError,
    warnings: health?.warnings ?? [],
    checkedAt: health?.checkedAt,
  });
}

function withoutUndefined<T extends Record<string, unknown>>(object: T): T {
  for (const key of Object.keys(object)) if (object[key] === undefined) delete object[key];
  return object;
}
