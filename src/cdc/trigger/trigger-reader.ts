import type { Client, Notification } from 'pg';
import { BusbarError } from '../../core/errors.ts';
import type { ChangeData } from '../change.ts';
import type { ChangeSink } from '../capture-source.ts';
import type { CaptureNames } from './capture-schema.ts';
import { ChangeDecoder, type CommittedTransaction } from './change-decoder.ts';
import { type CommitEntry, ChangeLog, type NumberedTransaction, type TickResult } from './change-log.ts';
import { TableShapes } from './column-types.ts';
import { DeliveryWindow } from './delivery-window.ts';

/** The tuning a reader runs with (resolved defaults of the source's options). */
export interface ReaderSettings {
  readonly readerName: string;
  /** Change rows read per batch (a larger transaction is read in pages of this size, then delivered whole). */
  readonly batchSize: number;
  /** Fallback poll while idle, ms. */
  readonly pollInterval: number;
  /** Transactions handed to the sink and not yet acknowledged, at most. */
  readonly maxInFlight: number;
  readonly onWarning: (message: string) => void;
}

/** How often acknowledged positions are written down and acknowledged rows pruned while busy. */
const CHECKPOINT_EVERY_MS = 200;
const PRUNE_EVERY_MS = 1000;
const PRUNE_CHUNK = 10_000;
/** First re-check delay while transactions that may have missed the idle mark are still running. */
const FIRST_RECHECK_MS = 5;
/** While busy, the shortest time between two ticks (the latency a busy reader adds, at most). */
const TICK_EVERY_MS = 5;
/** After an abort, how long a query in progress may take before the connection is cut. */
const ABORT_GRACE_MS = 2000;

type Wake = 'notified' | 'timeout' | 'aborted';

/**
 * One streaming session on its own connection: resumes from the reader's
 * checkpoint, ticks (numbers newly committed transactions), reads them in
 * order, hands them to the sink with a bounded number in flight, and once
 * they are acknowledged records the checkpoint and prunes — all batched.
 * When caught up it marks itself idle so writers NOTIFY, re-checking until
 * every transaction that might have missed the mark has ended.
 */
export class TriggerReader {
  private readonly client: Client;
  private readonly log: ChangeLog;
  private readonly decoder: ChangeDecoder;
  private readonly settings: ReaderSettings;
  private readonly signal: AbortSignal;
  private window: DeliveryWindow = new DeliveryWindow(0, 1);
  private cursor = 0;
  private saved = 0;
  private pruned = 0;
  private lastSave = 0;
  private lastPrune = 0;
  private notified = false;
  private lost: Error | undefined;
  private wake: ((reason: Wake) => void) | undefined;
  private lastTick = 0;
  private cutTimer: NodeJS.Timeout | undefined;

  constructor(client: Client, names: CaptureNames, settings: ReaderSettings, signal: AbortSignal) {
    this.client = client;
    this.log = new ChangeLog(client, names);
    this.decoder = new ChangeDecoder(new TableShapes(() => client), settings.onWarning);
    this.settings = settings;
    this.signal = signal;
    client.on('notification', (_message: Notification) => {
      this.notified = true;
      this.wake?.('notified');
    });
    const onLost = (error?: Error): void => {
      this.lost ??= error ?? new Error('connection ended');
      this.wake?.('aborted');
    };
    client.on('error', onLost);
    client.on('end', onLost);
    signal.addEventListener(
      'abort',
      () => {
        this.wake?.('aborted');
        // A query in progress (a long tick, a frozen server) would hold the
        // stream open: past a grace period, cut the connection under it.
        this.cutTimer = setTimeout(() => destroyConnection(client), ABORT_GRACE_MS);
        this.cutTimer.unref();
      },
      { once: true },
    );
  }

  /** The highest position the sink has acknowledged in this session (0 before streaming). */
  get acknowledged(): number {
    return this.window.acknowledged;
  }

  /** Streams until the signal aborts (resolves) or the link or sink fails (rejects). */
  async run(sink: ChangeSink, connected: () => void): Promise<void> {
    let started = false;
    try {
      await this.start();
      started = true;
      connected();
      await this.loop(sink);
    } catch (error) {
      if (this.signal.aborted) return; // stopping anyway: whatever broke on the way out only means a redelivery
      throw this.lost !== undefined || isConnectionError(error) ? unreachable(this.lost ?? (error as Error)) : error;
    } finally {
      if (started) await this.finish();
    }
  }

  /** Takes the reader's lock (one process per reader name), listens, and resumes from the checkpoint. */
  private async start(): Promise<void> {
    const name = this.settings.readerName;
    if (!(await this.log.lockReader(name))) {
      throw new BusbarError('BUSBAR_ERR_CDC_SLOT', `reader ${JSON.stringify(name)} is already streaming from another connection`, {
        details: { reader: name },
      });
    }
    await this.log.listen();
    const { checkpoint, pruned } = await this.log.register(name);
    this.cursor = this.saved = checkpoint;
    this.pruned = pruned;
    this.window = new DeliveryWindow(this.cursor, this.settings.maxInFlight);
    await this.log.busy();
  }

  private async loop(sink: ChangeSink): Promise<void> {
    let drained = false;
    while (!this.stopped()) {
      if (!drained) {
        const batch = await this.log.batchAfter(this.cursor, this.settings.batchSize);
        drained = batch.drained;
        if (batch.transactions.length > 0) {
          await this.deliver(sink, batch.transactions);
          await this.record(false);
          continue;
        }
      }
      drained = false;
      await this.pace();
      if (this.stopped()) break;
      this.lastTick = Date.now();
      if ((await this.log.tick()).ticked > 0) continue;
      await this.waitForChanges();
    }
  }

  private stopped(): boolean {
    if (this.lost !== undefined) throw unreachable(this.lost);
    this.window.check();
    return this.signal.aborted;
  }

  /**
   * While busy, ticks at most every TICK_EVERY_MS: a reader that keeps up
   * would otherwise tick for every few commits and spend more per
   * transaction than the writers do. Under a backlog it never waits here.
   */
  private async pace(): Promise<void> {
    const wait = this.lastTick + TICK_EVERY_MS - Date.now();
    if (wait > 0) await this.sleep(wait);
  }

  /** Decodes and delivers a batch of transactions (a first one larger than a batch is read page by page). */
  private async deliver(sink: ChangeSink, batch: readonly NumberedTransaction[]): Promise<void> {
    const first = batch[0]!;
    const transactions: CommittedTransaction[] =
      first.commit.changes > this.settings.batchSize
        ? [await this.readLarge(first.commit)]
        : batch.map(({ commit, rows }) => ({ seq: commit.seq, txid: commit.txid, committedAt: commit.committedAt, rows }));
    const decoded = await this.decoder.decode(transactions);
    for (const [i, transaction] of transactions.entries()) {
      await this.window.room();
      const changes: readonly ChangeData[] = decoded[i]!;
      this.window.add(
        transaction.seq,
        changes.length === 0 ? undefined : sink.deliver({ changes, position: transaction.seq }),
      );
      this.cursor = transaction.seq;
    }
  }

  /** A transaction larger than a batch, read page by page (it is delivered whole, as the sink contract wants). */
  private async readLarge(commit: CommitEntry): Promise<CommittedTransaction> {
    const rows = [];
    let after = '0';
    for (;;) {
      const page = await this.log.changesPage(commit.txid, after, this.settings.batchSize);
      rows.push(...page);
      if (page.length < this.settings.batchSize) break;
      after = page[page.length - 1]!.id;
    }
    return { seq: commit.seq, txid: commit.txid, committedAt: commit.committedAt, rows };
  }

  /** Writes the acknowledged position down and prunes, when due (or now, when `force`). */
  private async record(force: boolean): Promise<void> {
    const now = Date.now();
    const acknowledged = this.window.acknowledged;
    if (acknowledged > this.saved && (force || now - this.lastSave >= CHECKPOINT_EVERY_MS)) {
      await this.log.saveCheckpoint(this.settings.readerName, acknowledged);
      this.saved = acknowledged;
      this.lastSave = now;
    }
    if (this.saved > this.pruned && (force || now - this.lastPrune >= PRUNE_EVERY_MS)) {
      // Busy: one chunk per call. Caught up (force): until done, or until
      // a slower reader's checkpoint stops it.
      let before: number;
      do {
        before = this.pruned;
        this.pruned = await this.log.prune(this.pruned, PRUNE_CHUNK);
      } while (force && this.pruned > before && this.pruned < this.saved && !this.signal.aborted);
      this.lastPrune = now;
    }
  }

  /**
   * Caught up: mark idle, then re-check until every transaction that was
   * running when the mark was set has ended (one of them may have looked at
   * the mark just before it was set and will not NOTIFY), then wait for a
   * NOTIFY or the fallback poll. Woken, it clears the mark before anything
   * else, so writers stop notifying as early as possible.
   */
  private async waitForChanges(): Promise<void> {
    await this.window.drain();
    if (this.stopped()) return;
    await this.record(true);
    const idleFor = 2 * this.settings.pollInterval;
    let idle = false;
    try {
      for (;;) {
        this.notified = false;
        await this.log.idleFor(idleFor);
        idle = true;
        let markedAt = Date.now();
        let tick: TickResult = await this.log.tick();
        if (tick.ticked > 0) return;
        const bound = tick.nextXid;
        let delay = FIRST_RECHECK_MS;
        let woken = false;
        while (!woken) {
          const settled = tick.oldestRunning >= bound;
          const reason = await this.sleep(settled ? this.settings.pollInterval : delay);
          if (reason === 'aborted' || this.stopped()) return;
          if (reason === 'notified') {
            await this.log.busy();
            idle = false;
            woken = true;
          } else {
            if (!settled) delay = Math.min(delay * 2, this.settings.pollInterval);
            if (Date.now() - markedAt >= this.settings.pollInterval) {
              await this.log.idleFor(idleFor);
              markedAt = Date.now();
            }
          }
          tick = await this.log.tick();
          if (tick.ticked > 0) return;
        }
        // Woken for nothing new (its commit was already numbered): idle again, with a fresh bound.
      }
    } finally {
      if (idle && this.lost === undefined) await this.log.busy();
    }
  }

  private sleep(ms: number): Promise<Wake> {
    if (this.notified) {
      this.notified = false;
      return Promise.resolve('notified');
    }
    if (this.signal.aborted || this.lost !== undefined) return Promise.resolve('aborted');
    return new Promise((resolve) => {
      const timer = setTimeout(() => done('timeout'), ms);
      const done = (reason: Wake): void => {
        clearTimeout(timer);
        this.wake = undefined;
        this.notified = false;
        resolve(reason);
      };
      this.wake = done;
    });
  }

  /** On the way out: let deliveries settle, then record what they acknowledged (best effort: a lost checkpoint only redelivers). */
  private async finish(): Promise<void> {
    await this.window.drain();
    if (this.lost === undefined) {
      try {
        await this.record(true);
        await this.log.busy();
      } catch {}
    }
    clearTimeout(this.cutTimer);
  }
}

/** Destroys the socket under a pg client: the only way to stop waiting on a server that does not answer. */
function destroyConnection(client: Client): void {
  (client as unknown as { connection?: { stream?: { destroy?: () => void } } }).connection?.stream?.destroy?.();
}

/** Lost links as pg reports them: SQLSTATE class 08, a terminated backend (57P01…), or the driver's own messages. */
function isConnectionError(error: unknown): boolean {
  if (error instanceof BusbarError) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') return code.startsWith('08') || code.startsWith('57P');
  return error instanceof Error && /connection|terminated|timeout/i.test(error.message);
}

function unreachable(cause: Error): BusbarError {
  return new BusbarError('BUSBAR_ERR_UNREACHABLE', `change capture lost its connection: ${cause.message}`, { cause });
}
