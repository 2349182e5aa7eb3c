import type { Client, Pool } from 'pg';
import { BusbarError, toError } from '../core/errors.ts';
import type { CaptureSource, TableName, TableSpec } from './capture-source.ts';
import { CaptureLoop } from './capture-loop.ts';
import { type CdcStatus, type PostgresCdcOptions, type ResolvedOptions, resolveOptions } from './cdc-options.ts';
import type { ChangeOrigin } from './change.ts';
import { readOrigin } from './change-origin.ts';
import type { CdcBus, CdcHandler } from './change-sink.ts';
import { loadPgDriver, type PgDriver } from './pg-driver.ts';
import { createReplicationSource } from './replication/replication-source.ts';
import { type ResolvedTable, resolveTables, tableKey } from './table-spec.ts';
import { createTriggerSource } from './trigger/index.ts';

/**
 * A running (or startable) change capture; see `createPostgresCdc`.
 *
 * @example
 * ```ts
 * const cdc: PostgresCdc = createPostgresCdc({ connectionString, bus });
 * await cdc.ensureCdcFor('orders');
 * await cdc.run(); // until close()
 * ```
 */
export interface PostgresCdc {
  /** Starts capturing in the background and returns at once. Idempotent. */
  start(): void;
  /** Starts if needed; resolves when capture is closed, rejects with `BUSBAR_ERR_CDC_GAVE_UP` when it gives up (without `onError`). */
  run(): Promise<void>;
  /** Stops capturing: confirms what was delivered, calls `onClose`, closes every connection. */
  close(): Promise<void>;
  /** Captures these tables too (publication + REPLICA IDENTITY FULL, or triggers); idempotent. */
  ensureCdcFor(tables: TableSpec | readonly TableSpec[]): Promise<void>;
  /** Captures every table. */
  ensureCdcForAllTables(): Promise<void>;
  /** Stops capturing a table. */
  removeCdcFor(table: TableSpec): Promise<void>;
  /**
   * Replication mode: delivers a captured table's existing rows again as
   * READ events, under a new snapshot id (a downstream being rebuilt, a
   * snapshot that was skipped). Resolves once requested; `status().snapshots`
   * shows its progress. Fails with `BUSBAR_ERR_INVALID_ARGUMENT` for a table
   * not captured, and in trigger mode.
   *
   * @example
   * ```ts
   * await cdc.snapshot('orders'); // every row of orders arrives again as cdc.public.orders.read
   * ```
   */
  snapshot(table: TableSpec): Promise<void>;
  /** Stops capture (as `close()`) and drops the slot and publication (or the change tables): the next capture starts afresh. */
  dropSlot(): Promise<void>;
  addHandler(...handlers: CdcHandler[]): void;
  status(): CdcStatus;
}

/**
 * Captures a PostgreSQL database's row changes into a Busbar bus and/or
 * handlers: every committed INSERT, UPDATE, DELETE and TRUNCATE of the
 * captured tables becomes a CloudEvent of type
 * `cdc.<schema>.<table>.<action>`, in commit order, a transaction's changes
 * together. Replication mode (the default) reads a logical replication slot
 * and confirms a change only once the bus's store committed it; trigger mode
 * needs no replication right. It reconnects on failures (`retryAttempts`,
 * `retryInterval`), a watchdog on its own connection detects a frozen link,
 * and the final give-up reaches `onError`. See `docs/cdc.md`.
 *
 * @example
 * ```ts
 * const cdc = createPostgresCdc({
 *   connectionString: 'postgresql://postgres@127.0.0.1:5432/shop',
 *   tables: ['orders'],
 *   bus, // createBus({ store }): changes are durable events
 *   handlers: [{ onEvent: (event) => console.log(event.type, event.data.id) }],
 *   onError: (error) => console.error('capture stopped', error),
 * });
 * cdc.start();
 * // …
 * await cdc.close();
 * ```
 */
export function createPostgresCdc(options: PostgresCdcOptions): PostgresCdc {
  return new PostgresChangeCapture(options);
}

class PostgresChangeCapture implements PostgresCdc {
  private readonly options: ResolvedOptions;
  private readonly source: CaptureSource;
  private readonly handlers: CdcHandler[];
  private readonly bus: CdcBus | undefined;
  private readonly onError: ((error: BusbarError) => void) | undefined;
  private readonly warn: (message: string) => void;
  private readonly loop: CaptureLoop;
  private readonly closing = new AbortController();
  private readonly configured: { tables: readonly TableSpec[]; all: boolean };
  private configuredEnsured = false;
  private tables: TableName[] | 'all' = [];
  private running: Promise<void> | undefined;
  private closed: Promise<void> | undefined;
  private driver: PgDriver | undefined;
  private pool: Pool | undefined;
  private probeClient: Client | undefined;
  private origin: ChangeOrigin | undefined;

  constructor(options: PostgresCdcOptions) {
    this.options = resolveOptions(options);
    this.handlers = [...(options.handlers ?? [])];
    this.bus = options.bus;
    this.onError = options.onError;
    this.warn = options.onWarning ?? ((message) => process.emitWarning(message, { code: 'BUSBAR_CDC_WARNING' }));
    this.configured = { tables: options.tables ?? [], all: options.allTables ?? false };
    const common = {
      connectionString: this.options.connectionString,
      onWarning: (message: string) => this.warn(message),
    };
    this.source =
      options.source ??
      (this.options.mode === 'replication'
        ? createReplicationSource({
            ...common,
            timeout: this.options.timeout,
            slotName: this.options.slotName,
            publicationName: this.options.publicationName,
            maxInFlight: this.options.maxInFlight,
            snapshot: this.options.snapshot,
            snapshotChunkSize: this.options.snapshotChunkSize,
          })
        : createTriggerSource({ ...options.trigger, ...common }));
    this.loop = new CaptureLoop({
      source: this.source,
      options: this.options,
      bus: this.bus,
      handlers: this.handlers,
      prepare: () => this.prepare(),
      probe: () => this.probe(),
      resetProbe: () => this.resetProbe(),
      warn: this.warn,
    });
  }

  start(): void {
    if (this.running !== undefined) return;
    if (this.closing.signal.aborted) throw new BusbarError('BUSBAR_ERR_CLOSED', 'this change capture is closed');
    this.running = this.execute();
  }

  run(): Promise<void> {
    this.start();
    return this.running!;
  }

  private async execute(): Promise<void> {
    await this.callHandlers('onStart');
    try {
      await this.loop.run(this.closing.signal);
    } catch (error) {
      const gaveUp = error instanceof BusbarError ? error : new BusbarError('BUSBAR_ERR_CDC_GAVE_UP', toError(error).message, { cause: error });
      await this.callHandlers('onClose');
      await this.release();
      if (this.onError === undefined) throw gaveUp;
      this.onError(gaveUp);
      return;
    }
  }

  close(): Promise<void> {
    this.closed ??= (async () => {
      this.closing.abort();
      const wasRunning = this.running !== undefined && this.loop.state !== 'gave-up';
      await this.running?.catch(() => {});
      if (wasRunning) await this.callHandlers('onClose');
      await this.release();
    })();
    return this.closed;
  }

  async ensureCdcFor(tables: TableSpec | readonly TableSpec[]): Promise<void> {
    const specs: readonly TableSpec[] = Array.isArray(tables) ? tables : [tables as TableSpec];
    const resolved = await resolveTables(await this.adminPool(), specs);
    await this.source.ensureFor(resolved, { replicaIdentityFull: identityMap(resolved) });
    if (this.tables !== 'all') {
      for (const table of resolved) {
        if (!this.tables.some((each) => each.schema === table.schema && each.name === table.name)) {
          this.tables.push({ schema: table.schema, name: table.name });
        }
      }
    }
  }

  async ensureCdcForAllTables(): Promise<void> {
    await this.source.ensureForAll();
    this.tables = 'all';
  }

  async removeCdcFor(table: TableSpec): Promise<void> {
    const [resolved] = await resolveTables(await this.adminPool(), [table]);
    await this.source.removeFor(resolved!);
    if (this.tables !== 'all') {
      this.tables = this.tables.filter((each) => each.schema !== resolved!.schema || each.name !== resolved!.name);
    }
  }

  async snapshot(table: TableSpec): Promise<void> {
    if (this.source.snapshot === undefined) {
      throw new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', `${this.source.mode} mode does not snapshot tables: use mode 'replication'`);
    }
    const [resolved] = await resolveTables(await this.adminPool(), [table]);
    await this.source.snapshot({ schema: resolved!.schema, name: resolved!.name });
  }

  async dropSlot(): Promise<void> {
    this.closing.abort();
    await this.running?.catch(() => {});
    // The source must still be open to drop what it made: close it after.
    await this.source.drop();
    await this.close();
  }

  addHandler(...handlers: CdcHandler[]): void {
    for (const handler of handlers) {
      if (typeof handler !== 'object' || handler === null) {
        throw new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', 'a CDC handler must be an object with onStart/onConnect/onEvent/onClose methods');
      }
      this.handlers.push(handler);
    }
  }

  status(): CdcStatus {
    const loop = this.loop;
    return {
      mode: this.source.mode,
      state: loop.state,
      connected: loop.connected,
      tables: this.tables === 'all' ? 'all' : [...this.tables],
      failedAttempts: loop.failedAttempts,
      lastError: loop.lastError,
      delivered: loop.delivered,
      lastDelivered: loop.lastDelivered,
      health: loop.health,
      snapshots: this.source.snapshots?.() ?? [],
    };
  }

  /** Before each attempt: the configured tables (until once done) and the origin (once). */
  private async prepare(): Promise<ChangeOrigin> {
    if (!this.configuredEnsured) {
      if (this.configured.all) await this.ensureCdcForAllTables();
      else if (this.configured.tables.length > 0) await this.ensureCdcFor(this.configured.tables);
      this.configuredEnsured = true;
    }
    if (this.origin === undefined) {
      const driver = await this.pgDriver();
      const parsed = new driver.Client({ connectionString: this.options.connectionString });
      this.origin = await readOrigin(await this.adminPool(), { host: parsed.host, port: parsed.port });
    }
    return this.origin;
  }

  private async probe(): Promise<void> {
    const driver = await this.pgDriver();
    if (this.probeClient === undefined) {
      const client = new driver.Client({
        connectionString: this.options.connectionString,
        connectionTimeoutMillis: this.options.timeout,
        keepAlive: true,
        application_name: 'busbar-cdc-watchdog',
      });
      client.on('error', () => {});
      this.probeClient = client;
      try {
        await client.connect();
      } catch (error) {
        this.resetProbe();
        throw error;
      }
    }
    await this.probeClient.query('SELECT 1');
  }

  private resetProbe(): void {
    const client = this.probeClient;
    this.probeClient = undefined;
    if (client === undefined) return;
    (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
    client.end().catch(() => {});
  }

  private async callHandlers(name: 'onStart' | 'onClose'): Promise<void> {
    for (const handler of this.handlers) {
      try {
        await handler[name]?.();
      } catch (error) {
        this.warn(`a CDC handler's ${name} failed: ${toError(error).message}`);
      }
    }
  }

  private async release(): Promise<void> {
    this.resetProbe();
    const pool = this.pool;
    this.pool = undefined;
    await Promise.all([this.source.close().catch(() => {}), pool?.end().catch(() => {})]);
  }

  private async pgDriver(): Promise<PgDriver> {
    this.driver ??= await loadPgDriver();
    return this.driver;
  }

  private async adminPool(): Promise<Pool> {
    if (this.closed !== undefined) throw new BusbarError('BUSBAR_ERR_CLOSED', 'this change capture is closed');
    const driver = await this.pgDriver();
    if (this.pool === undefined) {
      this.pool = new driver.Pool({
        connectionString: this.options.connectionString,
        max: 1,
        connectionTimeoutMillis: this.options.timeout,
        keepAlive: true,
        application_name: 'busbar-cdc-admin',
      });
      this.pool.on('error', () => {});
      // A checked-out client has no listener of pg-pool's: a server restart
      // would otherwise crash the process with an unhandled 'error'.
      this.pool.on('connect', (client) => client.on('error', () => {}));
    }
    return this.pool;
  }
}

function identityMap(tables: readonly ResolvedTable[]): ReadonlyMap<string, boolean> {
  return new Map(tables.map((table) => [tableKey(table), table.replicaIdentityFull]));
}
