import type { Client } from 'pg';
import type { ChangeSink } from '../capture-source.ts';
import type { CapturedTransaction } from '../change.ts';
import type { ChunkRelease, StreamWatermarks } from '../snapshot/snapshot-window.ts';
import { Acknowledgements, type PendingDelivery } from './acknowledgements.ts';
import type { Lsn } from './lsn.ts';
import { decodePgoutput, type LogicalMessage, POSTGRES_EPOCH_MS, protocolError } from './pgoutput-decoder.ts';
import { replicationError } from './replication-errors.ts';
import { type RelationLookup, type TransactionChunk, TransactionAssembler } from './transaction-assembler.ts';

export interface SessionOptions {
  /** A connected client with `replication: 'database'`, output settings applied. */
  readonly client: Client;
  /** The START_REPLICATION command, names already quoted. */
  readonly command: string;
  readonly sink: ChangeSink;
  readonly signal: AbortSignal;
  readonly relations: RelationLookup;
  /** The slot's confirmed position when the session starts. */
  readonly confirmed: Lsn;
  /** How often (ms) to report a moved confirmed position. */
  readonly statusInterval: number;
  /** The longest silence (ms) before a report is sent anyway: well inside the server's wal_sender_timeout. */
  readonly quietInterval: number;
  /** Changes in flight (handed to the sink, not settled) above which reading pauses. */
  readonly maxInFlight: number;
  /** A transaction larger than this is handed on in chunks of this size. */
  readonly chunkSize: number;
  readonly onConnected: () => void;
  readonly onMessage?: (message: LogicalMessage) => void;
  /** The initial snapshot's watermarks: they see every change, and release a chunk's READ rows in stream order. */
  readonly watermarks?: StreamWatermarks;
}

/** What a running session lets the source see, for health reports. */
export interface SessionView {
  readonly acknowledgements: Acknowledgements;
}

const CLOSE_GRACE_MS = 1000;

/**
 * One streaming session on a replication connection: decodes what arrives,
 * hands transactions to the sink, confirms what the sink settled, pauses
 * reading when too much is in flight. Resolves when `signal` aborts,
 * rejects when the link or the sink fails (the caller reconnects).
 *
 * @example
 * ```ts
 * await runSession({ client, command, sink, signal, relations, confirmed, statusInterval: 1000,
 *   maxInFlight: 10_000, chunkSize: 1000, onConnected: () => {} });
 * ```
 */
export function runSession(options: SessionOptions, view: (session: SessionView) => void): Promise<void> {
  return new Promise((resolve, reject) => new Session(options, resolve, reject, view));
}

class Session {
  private readonly options: SessionOptions;
  private readonly acknowledgements: Acknowledgements;
  private readonly assembler: TransactionAssembler;
  private readonly socket: NodeJS.ReadableStream & { destroy(): void; destroyed?: boolean };
  /** Messages that arrived while a Relation look-up was pending, copied out of pg's buffer. */
  private readonly held: Buffer[] = [];
  private blocked = false;
  private paused = false;
  private finished = false;
  private received: Lsn;
  private reported: Lsn = -1n;
  private lastReportMs = 0;
  private readonly timer: NodeJS.Timeout;
  private readonly resolve: () => void;
  private readonly reject: (error: Error) => void;
  private readonly onAbort = (): void => this.stop();
  private readonly onCopyData = (message: { chunk: Buffer }): void => this.receive(message.chunk);
  private readonly onError = (error: Error): void => this.fail(error);
  private readonly onEnd = (): void => this.fail(new Error('the replication connection ended'));
  private readonly onStart = (): void => this.options.onConnected();

  constructor(options: SessionOptions, resolve: () => void, reject: (error: Error) => void, view: (session: SessionView) => void) {
    this.options = options;
    this.resolve = resolve;
    this.reject = reject;
    this.acknowledgements = new Acknowledgements(options.confirmed);
    this.received = options.confirmed;
    this.assembler = new TransactionAssembler(options.relations, options.chunkSize, (chunk) => this.deliver(chunk), (message) =>
      this.message(message),
    );
    const connection = (options.client as unknown as { connection: PgConnection }).connection;
    this.socket = connection.stream;
    view({ acknowledgements: this.acknowledgements });
    connection.on('copyData', this.onCopyData);
    connection.once('replicationStart', this.onStart);
    options.client.on('error', this.onError);
    options.client.on('end', this.onEnd);
    this.timer = setInterval(() => this.report(false), Math.max(10, Math.min(options.statusInterval, options.quietInterval)));
    this.timer.unref();
    if (options.signal.aborted) {
      queueMicrotask(() => this.stop());
      return;
    }
    options.signal.addEventListener('abort', this.onAbort, { once: true });
    options.client.query(options.command, (error: Error | null) => {
      // START_REPLICATION only finishes when the server ends the stream.
      this.fail(error === null ? new Error('the server ended the replication stream') : replicationError(error));
    });
  }

  private receive(chunk: Buffer): void {
    if (this.finished) return;
    // While waiting, what is already in pg's read buffer still arrives:
    // it is held, in order, so nothing is handed on past the bound.
    if (this.blocked || this.paused || this.held.length > 0) {
      this.held.push(Buffer.from(chunk)); // pg reuses its buffer after this callback
      return;
    }
    this.handle(chunk);
  }

  private handle(chunk: Buffer): void {
    try {
      const kind = chunk[0];
      if (kind === 0x77) {
        // 'w' XLogData: start, end, send time (8 bytes each), then one pgoutput message
        const waiting = this.assembler.apply(decodePgoutput(chunk, 25));
        if (waiting !== undefined) this.block(waiting);
      } else if (kind === 0x6b) {
        // 'k' keepalive: WAL end, send time, reply requested
        const walEnd = chunk.readBigUInt64BE(1);
        if (walEnd > this.received) this.received = walEnd;
        // Nothing open and nothing in flight: everything up to the server's
        // WAL end is handled, so confirm it, or a captured table that sees
        // no writes would pin WAL while other tables are written.
        if (!this.assembler.inTransaction) this.acknowledgements.confirmIdle(walEnd);
        if (chunk[17] === 1) this.report(true);
      } else {
        throw protocolError(`unknown replication message type 0x${(kind ?? 0).toString(16)}`);
      }
    } catch (error) {
      this.fail(error as Error);
    }
  }

  /** Waits for a look-up: later messages are held, in order, until it is done. */
  private block(waiting: Promise<void>): void {
    this.blocked = true;
    this.socket.pause();
    waiting.then(
      () => {
        this.blocked = false;
        this.updateFlow();
      },
      (error: unknown) => this.fail(error as Error),
    );
  }

  private deliver(chunk: TransactionChunk): void {
    if (chunk.endLsn !== undefined && chunk.endLsn > this.received) this.received = chunk.endLsn;
    const pending = this.acknowledgements.add(chunk.changes.length, chunk.endLsn, chunk.commitMs);
    if (chunk.changes.length === 0) {
      this.acknowledgements.settle(pending);
      return;
    }
    this.options.watermarks?.observe(chunk.changes);
    this.handOn(pending, { changes: chunk.changes, position: chunk.endLsn });
  }

  /** A logical message: the caller's, or a snapshot watermark that releases a chunk's READ rows here, in stream order. */
  private message(message: LogicalMessage): void {
    this.options.onMessage?.(message);
    const release = this.options.watermarks?.message(message);
    if (release !== undefined) this.release(release);
  }

  private release(release: ChunkRelease): void {
    if (release.changes.length === 0) {
      release.settled(Promise.resolve());
      return;
    }
    // No position of its own: it only holds back the confirmation of what follows until it is durable.
    const pending = this.acknowledgements.add(release.changes.length, undefined, Date.now());
    release.settled(this.handOn(pending, { changes: release.changes, position: undefined }));
  }

  private handOn(pending: PendingDelivery, transaction: CapturedTransaction): Promise<void> {
    let delivered: Promise<void>;
    try {
      delivered = this.options.sink.deliver(transaction);
    } catch (error) {
      delivered = Promise.reject(error);
    }
    delivered.then(
      () => this.settle(pending),
      (error: unknown) => this.fail(error as Error),
    );
    // Only ever pauses here: this runs inside the handling of a message,
    // and handling held ones now would reorder them.
    if (!this.paused && this.acknowledgements.inFlightChanges >= this.options.maxInFlight) {
      this.paused = true;
      this.socket.pause();
    }
    return delivered;
  }

  private settle(pending: PendingDelivery): void {
    if (this.finished) return;
    this.acknowledgements.settle(pending);
    this.updateFlow();
  }

  /**
   * Pauses above the in-flight bound; below half of it, handles what was
   * held and resumes reading the socket.
   */
  private updateFlow(): void {
    if (this.finished) return;
    const bound = this.options.maxInFlight;
    if (!this.paused && this.acknowledgements.inFlightChanges >= bound) this.paused = true;
    if (this.paused && this.acknowledgements.inFlightChanges <= bound / 2) this.paused = false;
    while (!this.blocked && !this.paused && !this.finished && this.held.length > 0) {
      this.handle(this.held.shift()!);
      if (!this.paused && this.acknowledgements.inFlightChanges >= bound) this.paused = true;
    }
    if (this.blocked || this.paused) this.socket.pause();
    else this.socket.resume();
  }

  /** Sends a standby status update: received, and confirmed as flushed and applied. */
  private report(force: boolean): void {
    if (this.finished && !force) return;
    const confirmed = this.acknowledgements.confirmed;
    const now = Date.now();
    if (!force && confirmed === this.reported && now - this.lastReportMs < this.options.quietInterval) return;
    if (confirmed === 0n) return; // no position yet: an invalid one would be ignored anyway
    const message = Buffer.allocUnsafe(34);
    message[0] = 0x72; // 'r'
    message.writeBigUInt64BE(this.received > confirmed ? this.received : confirmed, 1);
    message.writeBigUInt64BE(confirmed, 9);
    message.writeBigUInt64BE(confirmed, 17);
    message.writeBigInt64BE(BigInt(now - POSTGRES_EPOCH_MS) * 1000n, 25);
    message[33] = 0;
    try {
      const connection = (this.options.client as unknown as { connection: PgConnection }).connection;
      connection.sendCopyFromChunk(message);
      this.reported = confirmed;
      this.lastReportMs = now;
    } catch {
      // A dead socket: the error or end event follows and ends the session.
    }
  }

  private stop(): void {
    if (this.finished) return;
    this.report(true); // what is settled now is confirmed before the goodbye
    this.finish();
    // Reading on (into no listener) lets the close be seen; a paused socket would hold it.
    this.socket.resume();
    const client = this.options.client;
    const grace = setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS);
    grace.unref();
    client.end().catch(() => {}).finally(() => {
      clearTimeout(grace);
      this.resolve();
    });
  }

  private fail(error: Error): void {
    if (this.finished) return;
    this.finish();
    this.socket.destroy();
    this.options.client.end().catch(() => {});
    this.reject(error);
  }

  private finish(): void {
    this.finished = true;
    this.held.length = 0;
    clearInterval(this.timer);
    this.options.signal.removeEventListener('abort', this.onAbort);
    const connection = (this.options.client as unknown as { connection: PgConnection }).connection;
    connection.off('copyData', this.onCopyData);
    connection.off('replicationStart', this.onStart);
    this.options.client.off('end', this.onEnd);
    // Keeps listening for errors: an unhandled 'error' event would crash the process.
    this.options.client.off('error', this.onError);
    this.options.client.on('error', () => {});
  }
}

/** The parts of pg's internal Connection the session uses. */
interface PgConnection {
  stream: NodeJS.ReadableStream & { destroy(): void };
  on(event: string, listener: (...args: any[]) => void): void;
  once(event: string, listener: (...args: any[]) => void): void;
  off(event: string, listener: (...args: any[]) => void): void;
  sendCopyFromChunk(chunk: Buffer): void;
}
