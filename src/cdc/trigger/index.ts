/**
 * Trigger-mode change capture: for PostgreSQL hosts without replication
 * rights. Needs the optional peer dependency `pg`; without it the first
 * call fails with `BUSBAR_ERR_MISSING_DRIVER`.
 *
 * @module
 */
import { BusbarError } from '../../core/errors.ts';
import type { CaptureSource } from '../capture-source.ts';
import { loadPgDriver } from '../pg-driver.ts';
import { TriggerSource } from './trigger-source.ts';

export { CAPTURE_SCHEMA_VERSION } from './capture-schema.ts';

/** Options of {@link createTriggerSource}. */
export interface TriggerSourceOptions {
  /** The captured database, e.g. `postgres://app@db/shop`. */
  connectionString: string;
  /** Busbar's own schema in that database (change table, readers…). Default `busbar_cdc`. */
  schema?: string;
  /** This reader's name: its checkpoint is kept under it, and one process streams as it at a time. Default `busbar`. */
  readerName?: string;
  /** Change rows read per batch. Default 1000. */
  batchSize?: number;
  /** Fallback poll while idle, in ms (a NOTIFY normally wakes the reader first). Default 1000. */
  pollInterval?: number;
  /** Transactions handed to the sink and not yet acknowledged, at most. Default 64. */
  maxInFlight?: number;
  /** A query that takes longer fails (the link is treated as lost), in ms. Default 30000. */
  queryTimeout?: number;
  /** A reader that has not advanced for this long is reported by `health()`, in ms. Default 5 minutes. */
  staleReaderAfter?: number;
  /** Non-fatal problems (a table without a primary key…). Default: `process.emitWarning`. */
  onWarning?: (message: string) => void;
}

/**
 * A trigger-mode capture source. Its triggers write each change to a change
 * table in the writer's own transaction (any row size; no payload ever goes
 * through NOTIFY, which only wakes an idle reader); the reader numbers
 * committed transactions from snapshots, so nothing committed while it was
 * away is lost and nothing is skipped when commits finish out of order. It
 * needs only ordinary rights: CREATE on the database (or on an existing
 * `schema`) and TRIGGER on captured tables.
 *
 * Usually driven by `createPostgresCdc({ mode: 'trigger' })`; use it directly
 * to feed your own sink.
 *
 * @example
 * ```ts
 * import { createTriggerSource } from 'busbar/cdc';
 *
 * const source = createTriggerSource({ connectionString: process.env.DATABASE_URL! });
 * await source.ensureFor([{ schema: 'public', name: 'orders' }], { replicaIdentityFull: new Map() });
 * const stop = new AbortController();
 * await source.stream(
 *   { deliver: async (tx) => console.log(tx.changes) }, // resolve once durably handled
 *   stop.signal,
 *   () => console.log('streaming'),
 * );
 * ```
 */
export function createTriggerSource(options: TriggerSourceOptions): CaptureSource {
  if (typeof options?.connectionString !== 'string' || options.connectionString.length === 0) {
    throw new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', 'connectionString must be a non-empty string');
  }
  const schema = options.schema ?? 'busbar_cdc';
  if (typeof schema !== 'string' || schema.length === 0 || Buffer.byteLength(schema) > 63 || schema.includes('\0')) {
    throw new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', `schema must be a name of 1-63 bytes without NUL, got ${JSON.stringify(schema)}`);
  }
  const readerName = options.readerName ?? 'busbar';
  if (typeof readerName !== 'string' || readerName.length === 0) {
    throw new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', `readerName must be a non-empty string, got ${JSON.stringify(readerName)}`);
  }
  return new TriggerSource(
    {
      connectionString: options.connectionString,
      schema,
      readerName,
      batchSize: positive('batchSize', options.batchSize, 1000),
      pollInterval: positive('pollInterval', options.pollInterval, 1000),
      maxInFlight: positive('maxInFlight', options.maxInFlight, 64),
      queryTimeout: positive('queryTimeout', options.queryTimeout, 30_000),
      staleReaderAfter: positive('staleReaderAfter', options.staleReaderAfter, 5 * 60_000),
      onWarning: options.onWarning ?? ((message) => process.emitWarning(message, 'BusbarCdcWarning')),
    },
    loadPgDriver,
  );
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', `${name} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

