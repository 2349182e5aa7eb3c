import { CheckpointTracker } from './checkpoint-tracker.ts';
import type { Delivery } from './delivery.ts';
import { BusbarError, toError } from './errors.ts';
import type { EventLog, LoggedEvent } from './event-log.ts';
import type { Subscription } from './subscription.ts';

/** Where a durable subscription starts when it has no checkpoint yet. */
export type StartFrom = 'beginning' | 'end' | { position: number } | { time: Date };

/** Throws `BUSBAR_ERR_INVALID_ARGUMENT` unless `from` is a start a reader understands. */
export function checkStartFrom(from: unknown): asserts from is StartFrom {
  if (from === 'beginning' || from === 'end') return;
  if (typeof from === 'object' && from !== null) {
    const { position, time } = from as { position?: unknown; time?: unknown };
    if ('position' in from && typeof position === 'number' && Number.isSafeInteger(position) && position >= 0) return;
    if ('time' in from && time instanceof Date && !Number.isNaN(time.getTime())) return;
  }
  throw new BusbarError(
    'BUSBAR_ERR_INVALID_ARGUMENT',
    `option "from" must be 'beginning', 'end', { position: integer >= 0 } or { time: valid Date }, got ${describe(from)}`,
  );
}

function describe(value: unknown): string {
  if (value instanceof Date) return `Date(${String(value.getTime())})`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** How far a durable subscription is behind the head of the log. */
export interface Lag {
  /** Everything at or below this position is handled. */
  checkpoint: number;
  head: number;
  /** Events committed after the checkpoint (of any topic). */
  events: number;
  /** Age of the oldest event not yet handled, seconds; 0 when caught up. */
  seconds: number;
}

/** What a reader needs from its bus. */
export interface ReaderHost {
  readonly store: EventLog;
  /** The delivery that hands `logged` to `subscription`, or undefined if the event is not for it. */
  deliveryFor(subscription: Subscription, logged: LoggedEvent): Delivery | undefined;
  reportError(error: Error, origin: string): void;
}

const PAGE = 512;
const RETRY_MS = 1000;

/**
 * Feeds one durable subscription from the log: from its checkpoint (or its
 * start position) forward, page by page, then parked at the head until a
 * commit wakes it. Catch-up and live are the same loop over positions, so
 * there is no switch-over at which an event could be missed or repeated. It
 * takes from the log only as fast as the queue frees room; publishers never
 * wait on a durable subscriber.
 */
export class LogReader {
  readonly subscription: Subscription;
  private readonly host: ReaderHost;
  private readonly start: StartFrom;
  private readonly abort = new AbortController();
  private tracker: CheckpointTracker | undefined;
  /** The last position handed out or passed over; undefined until the start is known. */
  cursor: number | undefined;
  readonly ready: Promise<void>;
  private readonly running: Promise<void>;
  private saved = -1;
  private saving: Promise<void> | undefined;
  private reachers: { position: number; resolve: () => void }[] = [];
  /** Positions whose dead letter is still being stored: the checkpoint waits for them. */
  private readonly storing = new Map<number, Promise<void>>();
  private readonly deadLettersInFlight = new Set<Promise<void>>();

  constructor(host: ReaderHost, subscription: Subscription, start: StartFrom) {
    this.host = host;
    this.subscription = subscription;
    this.start = start;
    let started!: () => void;
    this.ready = new Promise((resolve) => (started = resolve));
    this.running = this.run(started);
    subscription.onDone = (delivery) => this.done(delivery);
  }

  private async run(started: () => void): Promise<void> {
    const store = this.host.store;
    const signal = this.abort.signal;
    try {
      const checkpoint = await this.retrying(() => store.loadCheckpoint(this.subscription.name));
      // Undefined too when the reader stopped meanwhile: then so is `from`.
      const from = checkpoint ?? (await this.retrying(() => this.startPosition()));
      if (from === undefined) return;
      this.cursor = from;
      this.tracker = new CheckpointTracker(from);
      // A start computed from 'end' or a time must not be recomputed after a restart.
      if (checkpoint === undefined) this.save();
    } finally {
      started();
    }
    const topics = this.subscription.patterns.map((pattern) => pattern.source);
    while (!signal.aborted) {
      try {
        const page = await store.readAll({ after: this.cursor, limit: PAGE, topics });
        for (const logged of page.events) {
          if (signal.aborted) return;
          await this.hand(logged);
        }
        if (signal.aborted) return;
        this.cursor = Math.max(this.cursor, page.last);
        this.tracker.pass(page.last);
        this.save();
        if (this.reachers.length > 0) this.wakeReachers();
        if (page.events.length < PAGE) await store.waitForAppend(this.cursor, signal);
      } catch (error) {
        if (signal.aborted) return;
        this.host.reportError(toError(error), `reading the log for subscription "${this.subscription.name}"`);
        await pause(RETRY_MS, signal);
      }
    }
  }

  private async hand(logged: LoggedEvent): Promise<void> {
    const delivery = this.host.deliveryFor(this.subscription, logged);
    this.cursor = logged.position;
    if (delivery === undefined) {
      this.tracker!.pass(logged.position);
      return;
    }
    this.tracker!.take(logged.position, logged.recordedAt);
    // The log is the buffer: a full queue makes the reader wait (or, with
    // drop-oldest, drop), never a publisher; `reject` waits like `wait`.
    await this.subscription.offer(delivery);
  }

  private async startPosition(): Promise<number> {
    const store = this.host.store;
    const start = this.start;
    if (start === 'beginning') return 0;
    if (start === 'end') return store.head();
    if ('position' in start) return start.position;
    return store.positionAt(start.time);
  }

  /** Retries `work` until it succeeds or the reader stops (then undefined). */
  private async retrying<T>(work: () => Promise<T>): Promise<T | undefined> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      try {
        return await work();
      } catch (error) {
        this.host.reportError(toError(error), `starting durable subscription "${this.subscription.name}"`);
        await pause(RETRY_MS, signal);
      }
    }
    return undefined;
  }

  /** The bus is storing the dead letter for `position`; the checkpoint must not pass it before that commits. */
  storingDeadLetter(position: number, stored: Promise<void>): void {
    this.storing.set(position, stored);
  }

  private done(delivery: Delivery): void {
    const position = delivery.event.sequence;
    if (position === undefined || this.tracker === undefined) return;
    const stored = this.storing.get(position);
    if (stored === undefined) {
      if (this.tracker.done(position)) this.save();
      return;
    }
    this.storing.delete(position);
    // A dead letter that could not be stored keeps the checkpoint where it
    // is: the event is handled again after a restart rather than lost.
    const settled = stored.then(
      () => {
        if (this.tracker!.done(position)) this.save();
      },
      () => {},
    );
    this.deadLettersInFlight.add(settled);
    settled.then(() => this.deadLettersInFlight.delete(settled));
  }

  /** Saves the checkpoint if it moved; one save at a time, the latest position wins. */
  private save(): void {
    if (this.saving !== undefined || this.tracker === undefined || this.tracker.position === this.saved) return;
    const position = this.tracker.position;
    this.saving = this.host.store.saveCheckpoint(this.subscription.name, position).then(
      () => {
        this.saved = Math.max(this.saved, position);
        this.saving = undefined;
        this.save();
      },
      (error: unknown) => {
        this.saving = undefined;
        if (!isClosed(error)) this.host.reportError(toError(error), `saving the checkpoint of "${this.subscription.name}"`);
      },
    );
  }

  /** Saves the last checkpoint, after the dead letters and saves in flight. */
  async flush(): Promise<void> {
    while (this.deadLettersInFlight.size > 0) await Promise.all(this.deadLettersInFlight);
    while (this.saving !== undefined) await this.saving;
    this.save();
    while (this.saving !== undefined) await this.saving;
  }

  /** Resolves once the reader has handed out (or passed) everything up to `position`, or stopped. */
  reached(position: number): Promise<void> {
    if (this.abort.signal.aborted || (this.cursor !== undefined && this.cursor >= position)) return Promise.resolve();
    return new Promise((resolve) => this.reachers.push({ position, resolve }));
  }

  private wakeReachers(): void {
    const stopped = this.abort.signal.aborted;
    this.reachers = this.reachers.filter((each) => {
      if (!stopped && (this.cursor === undefined || this.cursor < each.position)) return true;
      each.resolve();
      return false;
    });
  }

  get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  /** Stops reading now; resolves once the loop has exited. What was queued is still handled. */
  stop(): Promise<void> {
    this.abort.abort();
    this.wakeReachers();
    return this.running;
  }

  async lag(): Promise<Lag> {
    await this.ready;
    const store = this.host.store;
    const head = await store.head();
    const checkpoint = this.tracker?.position ?? 0;
    const events = Math.max(0, head - checkpoint);
    let oldest = this.tracker?.oldestPendingAt;
    if (oldest === undefined && events > 0) {
      oldest = (await store.readAll({ after: checkpoint, limit: 1 })).events[0]?.recordedAt;
    }
    const seconds = oldest === undefined || events === 0 ? 0 : Math.max(0, (Date.now() - oldest) / 1000);
    return { checkpoint, head, events, seconds };
  }
}

function isClosed(error: unknown): boolean {
  return error instanceof BusbarError && error.code === 'BUSBAR_ERR_CLOSED';
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
