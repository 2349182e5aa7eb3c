import type pg from 'pg';
import { BusbarError } from '../../core/errors.ts';
import type { CaptureSource, ChangeSink, SourceHealth, TableName } from '../capture-source.ts';
import { captureHealth } from './capture-health.ts';
import { type CaptureNames, captureNames, migrate } from './capture-schema.ts';
import { capturableTables, dropCapture, installTriggers, removeTriggers } from './table-triggers.ts';
import { type ReaderSettings, TriggerReader } from './trigger-reader.ts';

/** The parts of `pg` trigger mode uses, loaded on first use. */
export type PgDriver = Pick<typeof pg, 'Pool' | 'Client' | 'escapeIdentifier' | 'escapeLiteral'>;

/** Options with every default filled in. */
export interface TriggerSourceSettings extends ReaderSettings {
  readonly connectionString: string;
  readonly schema: string;
  readonly queryTimeout: number;
  readonly staleReaderAfter: number;
}

interface Opened {
  readonly driver: PgDriver;
  readonly pool: pg.Pool;
  readonly names: CaptureNames;
}

/**
 * Trigger-mode change capture (see `createTriggerSource`): installs triggers
 * that write each change to Busbar's change table, and streams committed
 * transactions from it. Setup and health run on a small pool; each `stream`
 * call runs on a connection of its own.
 */
export class TriggerSource implements CaptureSource {
  readonly mode = 'trigger' as const;
  private readonly settings: TriggerSourceSettings;
  private readonly loadDriver: () => Promise<PgDriver>;
  private opened: Promise<Opened> | undefined;
  private installed: Promise<Opened> | undefined;
  private readers = new Set<TriggerReader>();
  private closed = false;

  constructor(settings: TriggerSourceSettings, loadDriver: () => Promise<PgDriver>) {
    this.settings = settings;
    this.loadDriver = loadDriver;
  }

  async ensureFor(tables: readonly TableName[]): Promise<void> {
    const { pool, names, driver } = await this.install();
    await withClient(pool, async (client) => {
      for (const table of tables) {
        const installed = await installTriggers(client, names, driver, table);
        if (!installed.hasKey) {
          this.settings.onWarning(
            `table ${JSON.stringify(`${table.schema}.${table.name}`)} has no primary key: its changes arrive with id null`,
          );
        }
      }
      // Registered now, so nothing captured from here on is pruned before this reader first streams.
      await client.query(`INSERT INTO ${names.readers} (name) VALUES ($1) ON CONFLICT DO NOTHING`, [this.settings.readerName]);
    });
  }

  /**
   * Installs on every table there is now. PostgreSQL offers no hook for
   * tables created later without superuser rights (event triggers), which
   * trigger mode does not assume: call this again after creating tables.
   */
  async ensureForAll(): Promise<void> {
    const { pool, names } = await this.install();
    const tables = await withClient(pool, (client) => capturableTables(client, names));
    await this.ensureFor(tables);
  }

  async removeFor(table: TableName): Promise<void> {
    const { pool, names, driver } = await this.open();
    await withClient(pool, (client) => removeTriggers(client, names, driver, table));
  }

  async stream(sink: ChangeSink, signal: AbortSignal, connected: () => void): Promise<void> {
    const { driver, names } = await this.install();
    if (signal.aborted) return;
    const client = new driver.Client({
      connectionString: this.settings.connectionString,
      query_timeout: this.settings.queryTimeout,
      keepAlive: true,
      application_name: `busbar cdc ${this.settings.readerName}`.slice(0, 63),
    });
    // Until the reader attaches its own: an 'error' without a listener would crash the process.
    client.on('error', () => {});
    try {
      await client.connect();
    } catch (error) {
      await client.end().catch(() => {});
      throw new BusbarError('BUSBAR_ERR_UNREACHABLE', `change capture could not connect to PostgreSQL: ${(error as Error).message}`, {
        cause: error,
      });
    }
    const reader = new TriggerReader(client, names, this.settings, signal);
    this.readers.add(reader);
    try {
      await reader.run(sink, connected);
    } finally {
      this.readers.delete(reader);
      await endWithin(client, 2000);
    }
  }

  async health(): Promise<SourceHealth> {
    const { pool, names } = await this.install();
    let acknowledged = 0;
    for (const reader of this.readers) acknowledged = Math.max(acknowledged, reader.acknowledged);
    return withClient(pool, (client) =>
      captureHealth(client, names, this.settings.readerName, acknowledged, this.settings.staleReaderAfter),
    );
  }

  async drop(): Promise<void> {
    const { pool, names } = await this.open();
    await withClient(pool, (client) => dropCapture(client, names));
    this.installed = undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    const opened = this.opened;
    this.opened = undefined;
    this.installed = undefined;
    if (opened !== undefined) await (await opened.catch(() => undefined))?.pool.end();
  }

  private open(): Promise<Opened> {
    if (this.closed) return Promise.reject(new BusbarError('BUSBAR_ERR_CLOSED', 'the trigger capture source is closed'));
    this.opened ??= this.loadDriver().then((driver) => {
      const pool = new driver.Pool({
        connectionString: this.settings.connectionString,
        max: 2,
        query_timeout: this.settings.queryTimeout,
        keepAlive: true,
      });
      pool.on('error', () => {}); // an idle client's lost connection is replaced on next use
      // pg-pool listens for a client's errors only while it is idle. A FATAL
      // that arrives while it is checked out and between queries (a fast
      // shutdown or pg_terminate_backend, even in the same socket read as
      // the ReadyForQuery that handed it out) is emitted as an 'error' with
      // no listener, which crashes the process. The query in flight still
      // fails, and the pool drops a broken client when it is released.
      pool.on('connect', (client) => client.on('error', () => {}));
      return { driver, pool, names: captureNames(this.settings.schema, driver) };
    });
    this.opened.catch(() => (this.opened = undefined));
    return this.opened;
  }

  /** Opens, and installs or migrates Busbar's schema once per source (retried after a failure). */
  private install(): Promise<Opened> {
    this.installed ??= this.open().then(async (opened) => {
      await withClient(opened.pool, (client) => migrate(client, opened.names, opened.driver));
      return opened;
    });
    this.installed.catch(() => (this.installed = undefined));
    return this.installed;
  }
}

async function withClient<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (error) {
    throw new BusbarError('BUSBAR_ERR_UNREACHABLE', `change capture could not connect to PostgreSQL: ${(error as Error).message}`, {
      cause: error,
    });
  }
  let failure: unknown;
  try {
    return await work(client);
  } catch (error) {
    failure = error;
    throw error;
  } finally {
    // A connection that failed mid-way may be in a bad state: destroy it rather than reuse it.
    client.release(failure instanceof Error && !(failure instanceof BusbarError) ? failure : undefined);
  }
}

/** Ends a connection, giving up waiting after `ms` (a frozen server never answers the goodbye). */
async function endWithin(client: pg.Client, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([client.end().catch(() => {}), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
