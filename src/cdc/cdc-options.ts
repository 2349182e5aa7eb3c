import { BusbarError } from '../core/errors.ts';
import type { CaptureSource, SourceHealth, TableName, TableSpec } from './capture-source.ts';
import type { CdcBus, CdcHandler } from './change-sink.ts';
import type { TableSnapshotStatus } from './snapshot/snapshot-progress.ts';
import type { TriggerSourceOptions } from './trigger/index.ts';

/**
 * Options of `createPostgresCdc`. Durations are in milliseconds.
 *
 * @example
 * ```ts
 * const options: PostgresCdcOptions = {
 *   connectionString: 'postgresql://capture@db:5432/shop',
 *   tables: ['orders', { schema: 'sales', name: 'Order Lines' }],
 *   retryAttempts: 10,
 *   bus,
 * };
 * ```
 */
export interface PostgresCdcOptions {
  /** The captured database, `postgresql://user@host:port/db` (or any form `pg` accepts). */
  connectionString: string;
  /** `replication` (logical decoding, the default) or `trigger` (no replication right needed). */
  mode?: 'replication' | 'trigger';
  /** Tables to capture; `start()` ensures them. */
  tables?: readonly TableSpec[];
  /** Capture every table (`FOR ALL TABLES` in replication mode). */
  allTables?: boolean;
  /** The replication slot. Default `busbar`. */
  slotName?: string;
  /** The publication. Default `busbar`. */
  publicationName?: string;
  /** Connection attempts in a row that may fail before capture gives up; ≤ 0 retries for ever. Default 0. */
  retryAttempts?: number;
  /** Wait between attempts. Default 5000. */
  retryInterval?: number;
  /** How often the watchdog checks the link and the slot. Default 5000. */
  watchdogInterval?: number;
  /** How long a connection or a watchdog check may take. Default 5000. */
  timeout?: number;
  /**
   * Receives the final give-up (`BUSBAR_ERR_CDC_GAVE_UP`, the last error as
   * `cause`). Without it, `run()` rejects with that error and `start()`
   * leaves it as an unhandled rejection (which ends the process by default).
   */
  onError?: (error: BusbarError) => void;
  /** Problems that do not stop capture: a failed attempt, a table without a key, a forgotten slot. Default: process warnings. */
  onWarning?: (message: string) => void;
  /** Publishes each change here; with a store, a change is confirmed only once committed. */
  bus?: CdcBus;
  handlers?: readonly CdcHandler[];
  /** A capture source of your own instead of the mode's (tests, other databases). */
  source?: CaptureSource;
  /** Changes in flight (handed on, not yet committed) above which reading pauses. Default 10 000. */
  maxInFlight?: number;
  /** Trigger mode's own options (schema, readerName, batchSize, pollInterval, maxInFlight, queryTimeout, staleReaderAfter). */
  trigger?: Omit<TriggerSourceOptions, 'connectionString' | 'onWarning'>;
  /**
   * Replication mode: `initial` (the default) delivers the existing rows of
   * each table it starts capturing as READ changes, chunk by chunk, resuming
   * after a crash; `never` captures changes only. See docs/cdc.md, "The
   * initial snapshot". Trigger mode does not snapshot.
   */
  snapshot?: 'initial' | 'never';
  /** Rows per snapshot chunk (memory holds one chunk). Default 2000. */
  snapshotChunkSize?: number;
}

/**
 * What `status()` reports; the server exposes it.
 *
 * @example
 * ```ts
 * const { state, lastDelivered, health } = cdc.status();
 * if (health?.lagSeconds !== undefined && health.lagSeconds > 60) alert(`capture is ${health.lagSeconds} s behind`);
 * ```
 */
export interface CdcStatus {
  readonly mode: 'replication' | 'trigger';
  readonly state: 'idle' | 'connecting' | 'streaming' | 'retrying' | 'stopped' | 'gave-up';
  readonly connected: boolean;
  /** The captured tables, `all`, or none yet. */
  readonly tables: readonly TableName[] | 'all';
  /** Failed connection attempts since the last successful connect. */
  readonly failedAttempts: number;
  readonly lastError: { readonly code: string | undefined; readonly message: string; readonly at: string } | undefined;
  /** Change events delivered since start. */
  readonly delivered: number;
  /** The last change delivered: its commit position (`lsn`), transaction and commit time. */
  readonly lastDelivered: { readonly lsn: string; readonly txid: string; readonly timestamp: string; readonly at: string } | undefined;
  /** The watchdog's last health check. */
  readonly health: (SourceHealth & { readonly checkedAt: string }) | undefined;
  /** Each table's initial snapshot (replication mode): pending, running with rows done of the estimate, done or skipped. */
  readonly snapshots: readonly TableSnapshotStatus[];
}

export interface ResolvedOptions {
  readonly connectionString: string;
  readonly mode: 'replication' | 'trigger';
  readonly slotName: string;
  readonly publicationName: string;
  readonly retryAttempts: number;
  readonly retryInterval: number;
  readonly watchdogInterval: number;
  readonly timeout: number;
  readonly maxInFlight: number;
  readonly snapshot: 'initial' | 'never';
  readonly snapshotChunkSize: number;
}

/** Checks the options and fills in defaults; throws `BUSBAR_ERR_INVALID_ARGUMENT` naming the bad one. */
export function resolveOptions(options: PostgresCdcOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw invalid('options must be an object');
  if (typeof options.connectionString !== 'string' || options.connectionString.length === 0) {
    throw invalid('option "connectionString" must be a non-empty string');
  }
  const mode = options.mode ?? 'replication';
  if (mode !== 'replication' && mode !== 'trigger') throw invalid(`option "mode" must be 'replication' or 'trigger', got ${JSON.stringify(mode)}`);
  if (options.tables !== undefined && !Array.isArray(options.tables)) throw invalid('option "tables" must be an array');
  if (options.allTables !== undefined && typeof options.allTables !== 'boolean') throw invalid('option "allTables" must be a boolean');
  if (options.allTables === true && (options.tables?.length ?? 0) > 0) throw invalid('give either "tables" or "allTables", not both');
  for (const name of ['onError', 'onWarning'] as const) {
    if (options[name] !== undefined && typeof options[name] !== 'function') throw invalid(`option "${name}" must be a function`);
  }
  if (options.handlers !== undefined && !Array.isArray(options.handlers)) throw invalid('option "handlers" must be an array');
  if (options.bus !== undefined && typeof options.bus?.publishEvent !== 'function') throw invalid('option "bus" must be a Busbar bus');
  const retryAttempts = options.retryAttempts ?? 0;
  if (!Number.isInteger(retryAttempts)) throw invalid(`option "retryAttempts" must be an integer, got ${JSON.stringify(retryAttempts)}`);
  const snapshot = options.snapshot ?? 'initial';
  if (snapshot !== 'initial' && snapshot !== 'never') throw invalid(`option "snapshot" must be 'initial' or 'never', got ${JSON.stringify(snapshot)}`);
  const snapshotChunkSize = options.snapshotChunkSize ?? 2000;
  if (!Number.isInteger(snapshotChunkSize) || snapshotChunkSize < 1) {
    throw invalid(`option "snapshotChunkSize" must be a positive integer, got ${JSON.stringify(snapshotChunkSize)}`);
  }
  return {
    connectionString: options.connectionString,
    mode,
    slotName: options.slotName ?? 'busbar',
    publicationName: options.publicationName ?? 'busbar',
    retryAttempts,
    retryInterval: duration('retryInterval', options.retryInterval, 5000, true),
    watchdogInterval: duration('watchdogInterval', options.watchdogInterval, 5000, false),
    timeout: duration('timeout', options.timeout, 5000, false),
    maxInFlight: duration('maxInFlight', options.maxInFlight, 10_000, false),
    snapshot,
    snapshotChunkSize,
  };
}

function duration(name: string, value: number | undefined, fallback: number, zeroAllowed: boolean): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!zeroAllowed && value === 0)) {
    throw invalid(`option "${name}" must be a ${zeroAllowed ? 'non-negative' : 'positive'} number, got ${JSON.stringify(value)}`);
  }
  return value;
}

function invalid(message: string): BusbarError {
  return new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', message);
}
