import type { Client, Pool } from 'pg';
import { BusbarError } from '../../core/errors.ts';
import type { CaptureSource, ChangeSink, SourceHealth, TableName } from '../capture-source.ts';
import { loadPgDriver, type PgDriver } from '../pg-driver.ts';
import { TypeCatalog } from '../type-catalog.ts';
import type { Acknowledgements } from './acknowledgements.ts';
import { NO_LSN, parseLsn } from './lsn.ts';
import type { LogicalMessage } from './pgoutput-decoder.ts';
import { RelationCache } from './relation-cache.ts';
import { replicationError } from './replication-errors.ts';
import { FORGOTTEN_AFTER_MS, slotHealth } from './replication-health.ts';
import { runSession } from './replication-session.ts';
import {
  assertWalLevel,
  dropSlotAndPublication,
  ensurePublicationExists,
  ensurePublicationFor,
  ensurePublicationForAll,
  removeFromPublication,
  type SetupDatabase,
  type SlotState,
  usableSlot,
} from './replication-setup.ts';

/**
 * Options of `createReplicationSource`; `createPostgresCdc` fills them from its own.
 *
 * @example
 * ```ts
 * const options: ReplicationSourceOptions = { connectionString, slotName: 'orders', statusInterval: 500 };
 * ```
 */
export interface ReplicationSourceOptions {
  connectionString: string;
  /** The replication slot: `[a-z0-9_]{1,63}`, PostgreSQL's rule. Default `busbar`. */
  slotName?: string;
  /** Default `busbar`. */
  publicationName?: string;
  /** Connect and query timeout (ms). Default 5000. */
  timeout?: number;
  /** How often (ms) the confirmed position is reported to the server. Default 1000. */
  statusInterval?: number;
  /** Changes handed on and not yet settled above which reading pauses. Default 10 000. */
  maxInFlight?: number;
  /** A transaction larger than this many changes is handed on in chunks. Default 1000. */
  chunkSize?: number;
  /** A table without a primary key, a slot that needs attention. Default: a process warning. */
  onWarning?: (message: string) => void;
  /** `pg_logical_emit_message` messages (heartbeats, snapshot watermarks) as they arrive. */
  onMessage?: (message: LogicalMessage) => void;
}

// PostgreSQL's own rule for slot names (ReplicationSlotValidateName).
const SLOT_NAME = /^[a-z0-9_]{1,63}$/;

/** The session settings that make pgoutput's text predictable for the decoders in values.ts. */
const OUTPUT_SETTINGS =
  `SET DateStyle = ISO; SET TimeZone = 'UTC'; SET IntervalStyle = postgres; ` +
  `SET extra_float_digits = 3; SET bytea_output = hex`;

/**
 * Replication mode: logical decoding with pgoutput from a persistent slot,
 * spoken over `pg` itself. See `docs/cdc.md` for what it needs of the server
 * and what it guarantees.
 *
 * @example
 * ```ts
 * const source = createReplicationSource({ connectionString, slotName: 'orders' });
 * await source.ensureFor([{ schema: 'public', name: 'orders' }], { replicaIdentityFull: new Map() });
 * await source.stream(sink, controller.signal, () => console.log('streaming'));
 * ```
 */
export function createReplicationSource(options: ReplicationSourceOptions): CaptureSource {
  return new ReplicationSource(options);
}

class ReplicationSource implements CaptureSource {
  readonly mode = 'replication' as const;
  private readonly options: Required<Omit<ReplicationSourceOptions, 'onMessage'>> & Pick<ReplicationSourceOptions, 'onMessage'>;
  private driver: PgDriver | undefined;
  private pool: Pool | undefined;
  private healthLink: { client: Client; busy: boolean } | undefined;
  private acknowledgements: Acknowledgements | undefined;
  private streaming = false;
  /** When streaming last stopped; a slot unread for a long time is reported as forgotten. */
  private idleSince = Date.now() - FORGOTTEN_AFTER_MS;
  private closed = false;

  constructor(options: ReplicationSourceOptions) {
    if (typeof options.connectionString !== 'string' || options.connectionString.length === 0) {
      throw invalid('connectionString must be a non-empty string');
    }
    const slotName = options.slotName ?? 'busbar';
    if (typeof slotName !== 'string' || !SLOT_NAME.test(slotName)) {
      throw invalid(`slotName must be 1-63 lower-case letters, digits or underscores (PostgreSQL's rule), got ${JSON.stringify(slotName)}`);
    }
    const publicationName = options.publicationName ?? 'busbar';
    if (typeof publicationName !== 'string' || publicationName.length === 0 || publicationName.length > 63) {
      throw invalid(`publicationName must be a name of 1-63 characters, got ${JSON.stringify(publicationName)}`);
    }
    this.options = {
      connectionString: options.connectionString,
      slotName,
      publicationName,
      timeout: positive('timeout', options.timeout, 5000),
      statusInterval: positive('statusInterval', options.statusInterval, 1000),
      maxInFlight: positive('maxInFlight', options.maxInFlight, 10_000),
      chunkSize: positive('chunkSize', options.chunkSize, 1000),
      onWarning: once(options.onWarning ?? ((message) => process.emitWarning(message, { code: 'BUSBAR_CDC_WARNING' }))),
      onMessage: options.onMessage,
    };
  }

  async ensureFor(tables: readonly TableName[], options: { replicaIdentityFull: ReadonlyMap<string, boolean> }): Promise<void> {
    await ensurePublicationFor(await this.openSetup(), tables, options.replicaIdentityFull);
  }

  async ensureForAll(): Promise<void> {
    await ensurePublicationForAll(await this.openSetup());
  }

  async removeFor(table: TableName): Promise<void> {
    await removeFromPublication(await this.openSetup(), table);
  }

  /** Works after close() too: it opens what it needs and closes it again. */
  async drop(): Promise<void> {
    try {
      await dropSlotAndPublication(await this.setup(), this.options.timeout);
    } finally {
      if (this.closed) await this.endPool();
    }
  }

  async stream(sink: ChangeSink, signal: AbortSignal, connected: () => void): Promise<void> {
    if (this.closed) throw new BusbarError('BUSBAR_ERR_CLOSED', 'the replication source is closed');
    const setup = await this.setup();
    const driver = this.driver!;
    const { slotName, timeout } = this.options;
    const client = new driver.Client({
      connectionString: this.options.connectionString,
      replication: 'database',
      connectionTimeoutMillis: timeout,
      keepAlive: true,
      application_name: 'busbar-cdc',
    } as ConstructorParameters<typeof driver.Client>[0]);
    client.on('error', () => {}); // until the session listens: a drop here surfaces as a failed query
    let slot: SlotState | undefined;
    let senderTimeout: number;
    try {
      // Each step gives up when the signal aborts: on a frozen server a
      // query never answers, and the watchdog aborts to reconnect.
      await untilAborted(signal, assertWalLevel(setup.pool));
      await untilAborted(signal, ensurePublicationExists(setup));
      slot = await untilAborted(signal, usableSlot(setup.pool, slotName, timeout));
      senderTimeout = await untilAborted(signal, walSenderTimeout(setup.pool));
      await untilAborted(signal, client.connect());
      await untilAborted(signal, client.query(OUTPUT_SETTINGS));
      if (slot === undefined) {
        await untilAborted(signal, this.createSlot(client));
        slot = await untilAborted(signal, usableSlot(setup.pool, slotName, timeout));
        if (slot === undefined) throw new Error(`replication slot "${slotName}" vanished right after it was created`);
      }
    } catch (error) {
      destroy(client);
      if (error === ABORTED) return;
      throw replicationError(error as Error, slotName);
    }
    const relations = new RelationCache(setup.pool, new TypeCatalog(setup.pool), this.options.onWarning);
    const quotedSlot = driver.escapeIdentifier(slotName);
    // The replication grammar reads '…' with '' for a quote; inside, the
    // publication list is identifiers, so the name is quoted twice.
    const publications = `'${driver.escapeIdentifier(this.options.publicationName).replaceAll("'", "''")}'`;
    this.streaming = true;
    try {
      await runSession(
        {
          client,
          command: `START_REPLICATION SLOT ${quotedSlot} LOGICAL 0/0 (proto_version '1', publication_names ${publications}, messages 'true')`,
          sink,
          signal,
          relations,
          confirmed: slot.confirmedFlush === null ? NO_LSN : parseLsn(slot.confirmedFlush),
          statusInterval: this.options.statusInterval,
          // Reported even when nothing moved (reading may be paused), so the
          // server never counts the reader as gone: a third of its timeout.
          quietInterval: senderTimeout > 0 ? Math.min(10_000, senderTimeout / 3) : 10_000,
          maxInFlight: this.options.maxInFlight,
          chunkSize: Math.min(this.options.chunkSize, Math.max(1, Math.floor(this.options.maxInFlight / 2))),
          onConnected: connected,
          ...(this.options.onMessage === undefined ? {} : { onMessage: this.options.onMessage }),
        },
        (session) => (this.acknowledgements = session.acknowledgements),
      );
    } catch (error) {
      throw replicationError(error as Error, slotName);
    } finally {
      this.streaming = false;
      this.idleSince = Date.now();
      this.acknowledgements = undefined;
    }
  }

  async health(): Promise<SourceHealth> {
    if (this.closed) throw new BusbarError('BUSBAR_ERR_CLOSED', 'the replication source is closed');
    await this.setup();
    // A check still waiting from last time means a hung connection: replace it.
    if (this.healthLink?.busy === true) {
      destroy(this.healthLink.client);
      this.healthLink = undefined;
    }
    let link = this.healthLink;
    if (link === undefined) {
      const client = new this.driver!.Client({
        connectionString: this.options.connectionString,
        connectionTimeoutMillis: this.options.timeout,
        keepAlive: true,
        application_name: 'busbar-cdc-health',
      });
      client.on('error', () => {});
      link = this.healthLink = { client, busy: true };
      try {
        await client.connect();
      } catch (error) {
        if (this.healthLink === link) this.healthLink = undefined;
        destroy(client);
        throw error;
      }
    }
    link.busy = true;
    try {
      return await slotHealth(link.client, this.options.slotName, {
        streaming: this.streaming,
        oldestUnconfirmedMs: this.acknowledgements?.oldestCommitMs(),
        idleMs: this.streaming ? undefined : Date.now() - this.idleSince,
      });
    } catch (error) {
      if (this.healthLink === link) this.healthLink = undefined;
      destroy(link.client);
      throw error;
    } finally {
      link.busy = false;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const link = this.healthLink;
    this.healthLink = undefined;
    if (link !== undefined) await endOrDestroy(link.client, this.options.timeout);
    await this.endPool();
  }

  private async endPool(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.end().catch(() => {});
  }

  private async createSlot(client: Client): Promise<void> {
    const quoted = this.driver!.escapeIdentifier(this.options.slotName);
    try {
      // NOEXPORT_SNAPSHOT: no initial snapshot yet. The snapshot work will
      // export one here, so its rows and the stream meet without a gap.
      await client.query(`CREATE_REPLICATION_SLOT ${quoted} LOGICAL pgoutput NOEXPORT_SNAPSHOT`);
    } catch (error) {
      if ((error as { code?: string }).code !== '42710') throw error; // created by another process meanwhile
    }
  }

  private openSetup(): Promise<SetupDatabase> {
    if (this.closed) return Promise.reject(new BusbarError('BUSBAR_ERR_CLOSED', 'the replication source is closed'));
    return this.setup();
  }

  private async setup(): Promise<SetupDatabase> {
    this.driver ??= await loadPgDriver();
    if (this.pool === undefined) {
      this.pool = new this.driver.Pool({
        connectionString: this.options.connectionString,
        max: 2,
        connectionTimeoutMillis: this.options.timeout,
        keepAlive: true,
        application_name: 'busbar-cdc-setup',
      });
      this.pool.on('error', () => {}); // an idle connection dropped: the next query reconnects
    }
    return {
      pool: this.pool,
      quote: (name) => this.driver!.escapeIdentifier(name),
      publication: this.options.publicationName,
      slot: this.options.slotName,
      onWarning: this.options.onWarning,
    };
  }
}

/** Says each distinct warning once: setup and every reconnect notice the same keyless table. */
function once(onWarning: (message: string) => void): (message: string) => void {
  const said = new Set<string>();
  return (message) => {
    if (said.has(message)) return;
    said.add(message);
    onWarning(message);
  };
}

function destroy(client: Client): void {
  (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
  client.end().catch(() => {});
}

async function endOrDestroy(client: Client, timeout: number): Promise<void> {
  const timer = setTimeout(() => destroy(client), timeout);
  await client.end().catch(() => {});
  clearTimeout(timer);
}

const ABORTED = Symbol('aborted');

/** The server's wal_sender_timeout in ms (0: none). */
async function walSenderTimeout(pool: Pool): Promise<number> {
  const { rows } = await pool.query(`SELECT setting::int AS ms FROM pg_catalog.pg_settings WHERE name = 'wal_sender_timeout'`);
  return Number((rows[0] as { ms: number } | undefined)?.ms ?? 0);
}

/** `work`, or a rejection with ABORTED as soon as `signal` aborts. */
function untilAborted<T>(signal: AbortSignal, work: Promise<T>): Promise<T> {
  if (signal.aborted) {
    work.catch(() => {});
    return Promise.reject(ABORTED);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(ABORTED);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

function invalid(message: string): BusbarError {
  return new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', message);
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw invalid(`option "${name}" must be a positive number, got ${JSON.stringify(value)}`);
  }
  return value;
}
