import type { Client, Pool } from 'pg';
import { BusbarError } from '../../core/errors.ts';
import type { CaptureSource, ChangeSink, SourceHealth, TableName } from '../capture-source.ts';
import { loadPgDriver, type PgDriver } from '../pg-driver.ts';
import { InitialSnapshot, type SnapshotSession } from '../snapshot/initial-snapshot.ts';
import type { TableSnapshotStatus } from '../snapshot/snapshot-progress.ts';
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
  /**
   * `initial`: the existing rows of each table `ensureFor` adds to the
   * publication are delivered as READ changes (docs/cdc.md, "The initial
   * snapshot"). Default `never` for this building block; `createPostgresCdc`
   * passes its own option, whose default is `initial`.
   */
  snapshot?: 'initial' | 'never';
  /** Rows per snapshot chunk. Default 2000. */
  snapshotChunkSize?: number;
}

/** Text bytes per snapshot chunk at most: a chunk of very wide rows ends early. */
const SNAPSHOT_CHUNK_BYTES = 32 * 1024 * 1024;

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
  private readonly initialSnapshot: InitialSnapshot;
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
      snapshot: options.snapshot ?? 'never',
      snapshotChunkSize: Math.floor(positive('snapshotChunkSize', options.snapshotChunkSize, 2000)) || 1,
    };
    if (this.options.snapshot !== 'initial' && this.options.snapshot !== 'never') {
      throw invalid(`option "snapshot" must be 'initial' or 'never', got ${JSON.stringify(options.snapshot)}`);
    }
    this.initialSnapshot = new InitialSnapshot({
      slot: slotName,
      publication: publicationName,
      mode: this.options.snapshot,
      chunkSize: this.options.snapshotChunkSize,
      chunkBytes: SNAPSHOT_CHUNK_BYTES,
      connect: () => this.snapshotConnection(),
      disconnect: destroy,
      quote: (name) => this.driver!.escapeIdentifier(name),
      onWarning: this.options.onWarning,
    });
  }

  async ensureFor(tables: readonly TableName[], options: { replicaIdentityFull: ReadonlyMap<string, boolean> }): Promise<void> {
    const setup = await this.openSetup();
    await ensurePublicationFor(setup, tables, options.replicaIdentityFull, this.initialSnapshot.onAdded());
    await this.initialSnapshot.changed(setup.pool);
  }

  async ensureForAll(): Promise<void> {
    const setup = await this.openSetup();
    await ensurePublicationForAll(setup, this.initialSnapshot.onAllTables());
    await this.initialSnapshot.changed(setup.pool);
  }

  async removeFor(table: TableName): Promise<void> {
    const setup = await this.openSetup();
    await removeFromPublication(setup, table);
    await this.initialSnapshot.forget(setup.pool, table);
  }

  /**
   * Snapshots a captured table again, with a new snapshot id: every row is
   * delivered as a READ once more (a downstream rebuilt, a snapshot that was
   * skipped). A snapshot of it still running is replaced.
   */
  async snapshot(table: TableName): Promise<void> {
    await this.initialSnapshot.request((await this.openSetup()).pool, table);
  }

  /** Each table's initial snapshot as last known. */
  snapshots(): readonly TableSnapshotStatus[] {
    return this.initialSnapshot.statuses();
  }

  /** Works after close() too: it opens what it needs and closes it again. */
  async drop(): Promise<void> {
    try {
      const setup = await this.setup();
      await dropSlotAndPublication(setup, this.options.timeout);
      await this.initialSnapshot.forgetSlot(setup.pool);
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
    let snapshots: SnapshotSession;
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
      // Tables waiting for their snapshot are tracked from the session's
      // first message: rows written after the slot's position arrive
      // through the stream only, never as READs too.
      snapshots = await untilAborted(signal, this.initialSnapshot.openSession(setup.pool));
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
    // The snapshot runs beside the session and ends with it; a failure of
    // its own (not of a table) ends the session too, so capture reconnects.
    const session = new AbortController();
    const endSession = (): void => session.abort();
    signal.addEventListener('abort', endSession, { once: true });
    let snapshotFailure: Error | undefined;
    const snapshotFailed = (error: Error): void => {
      snapshotFailure = error;
      session.abort();
    };
    this.streaming = true;
    try {
      await runSession(
        {
          client,
          command: `START_REPLICATION SLOT ${quotedSlot} LOGICAL 0/0 (proto_version '1', publication_names ${publications}, messages 'true')`,
          sink,
          signal: session.signal,
          watermarks: snapshots.window,
          relations,
          confirmed: slot.confirmedFlush === null ? NO_LSN : parseLsn(slot.confirmedFlush),
          statusInterval: this.options.statusInterval,
          // Reported even when nothing moved (reading may be paused), so the
          // server never counts the reader as gone: a third of its timeout.
          quietInterval: senderTimeout > 0 ? Math.min(10_000, senderTimeout / 3) : 10_000,
          maxInFlight: this.options.maxInFlight,
          chunkSize: Math.min(this.options.chunkSize, Math.max(1, Math.floor(this.options.maxInFlight / 2))),
          onConnected: () => {
            connected();
            snapshots.start(snapshotFailed);
          },
          ...(this.options.onMessage === undefined ? {} : { onMessage: this.options.onMessage }),
        },
        (view) => (this.acknowledgements = view.acknowledgements),
      );
    } catch (error) {
      throw replicationError(error as Error, slotName);
    } finally {
      signal.removeEventListener('abort', endSession);
      snapshots.end();
      session.abort();
      this.streaming = false;
      this.idleSince = Date.now();
      this.acknowledgements = undefined;
    }
    if (snapshotFailure !== undefined) throw replicationError(snapshotFailure, slotName);
  }

  /** A connection for the snapshot's chunk reads: the stream's output settings, so values read the same. */
  private async snapshotConnection(): Promise<Client> {
    const client = new this.driver!.Client({
      connectionString: this.options.connectionString,
      connectionTimeoutMillis: this.options.timeout,
      keepAlive: true,
      application_name: 'busbar-cdc-snapshot',
    });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query(OUTPUT_SETTINGS);
    } catch (error) {
      destroy(client);
      throw error;
    }
    return client;
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
      // NOEXPORT_SNAPSHOT: the initial snapshot reads chunks between
      // watermarks instead (snapshot/), which resumes after a crash and
      // serves tables added to a slot long after it was created.
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
      // A checked-out client has no listener of pg-pool's: a server restart
      // would otherwise crash the process with an unhandled 'error'.
      this.pool.on('connect', (client) => client.on('error', () => {}));
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
