import type { DeadLetter } from './dead-letters.ts';
import { Delivery, isSampled } from './delivery.ts';
import { BusbarError, toError } from './errors.ts';
import { type BusbarEvent, expiryOf } from './event.ts';
import type { EventLog, LoggedEvent, StoredDeadLetter } from './event-log.ts';
import { type Lag, LogReader, type ReaderHost, type StartFrom } from './log-reader.ts';
import type { Subscription } from './subscription.ts';

/** What the durable side needs from its bus. */
export interface DurableHost {
  readonly measure: boolean;
  nextSeq(): number;
  reportError(error: Error, origin: string): void;
}

/** A locally published delivery waiting for the readers of its durable recipients. */
interface Awaited {
  delivery: Delivery;
  /** Durable recipients whose reader has not taken it yet. */
  waiting: Set<Subscription>;
  /** The head before the append, when a recipient was still finding its start. */
  headBefore: number | undefined;
}

/**
 * The durable half of a bus with a store. Durable subscriptions read the log
 * through a {@link LogReader}; a local publish registers its delivery here
 * before the append, so the reader that meets the committed event hands the
 * same delivery on and the publisher's receipt settles with every result.
 */
export class DurableDelivery implements ReaderHost {
  readonly store: EventLog;
  private readonly host: DurableHost;
  private readonly readers = new Map<Subscription, LogReader>();
  private readonly awaited = new Map<string, Awaited>();
  /** The highest position this bus has appended. */
  private appendedUpTo = 0;

  constructor(store: EventLog, host: DurableHost) {
    this.store = store;
    this.host = host;
  }

  /** Starts reading the log for `subscription`. */
  attach(subscription: Subscription, start: StartFrom): LogReader {
    const reader = new LogReader(this, subscription, start);
    this.readers.set(subscription, reader);
    reader.ready.then(() => this.catchUpAwaited(reader));
    return reader;
  }

  /** Resolves once every reader has taken the log up to its head as of now (or what this bus appended). */
  async caughtUp(): Promise<void> {
    if (this.readers.size === 0) return;
    const head = await this.store.head().catch(() => 0);
    const position = Math.max(this.appendedUpTo, head);
    await Promise.all([...this.readers.values()].map((reader) => reader.reached(position)));
  }

  isDurable(subscription: Subscription): boolean {
    return this.readers.has(subscription);
  }

  reader(subscription: Subscription): LogReader | undefined {
    return this.readers.get(subscription);
  }

  /**
   * Stops the reader (at once: it takes nothing more from the log) and
   * settles the local deliveries it never took as `cancelled` for it.
   * Resolves when its loop has exited, which may wait for an admission the
   * subscription's close refuses or its drain admits.
   */
  detach(subscription: Subscription, reason: Error): Promise<void> {
    const reader = this.readers.get(subscription);
    if (reader === undefined) return Promise.resolve();
    const stopped = reader.stop();
    for (const [id, entry] of this.awaited) {
      if (!entry.waiting.delete(subscription)) continue;
      entry.delivery.record(subscription, 'cancelled', reason, 0);
      if (entry.waiting.size === 0) this.awaited.delete(id);
    }
    return stopped;
  }

  /** Waits for the subscription's queue to have been handled, then saves its checkpoint. */
  async flush(subscription: Subscription): Promise<void> {
    await this.readers.get(subscription)?.flush();
    this.readers.delete(subscription);
  }

  /** Registers a local publish before its append, for the durable targets among `targets`. */
  /**
   * Whether a publish to these recipients must read the head before its
   * append: a reader still finding its start may end up past the event, and
   * only the head from before tells a new event from an old id published again.
   */
  needsHeadBefore(durable: readonly Subscription[]): boolean {
    return durable.some((subscription) => this.readers.get(subscription)?.cursor === undefined);
  }

  register(delivery: Delivery, durable: Subscription[], headBefore: number | undefined): Awaited | undefined {
    if (durable.length === 0) return undefined;
    // The same id published again: the log keeps it once, and the readers
    // hand on the first delivery; this one only learns it was a duplicate.
    if (this.awaited.has(delivery.event.id)) {
      for (const subscription of durable) delivery.record(subscription, 'skipped', undefined, 0);
      return undefined;
    }
    const entry: Awaited = { delivery, waiting: new Set(durable), headBefore };
    this.awaited.set(delivery.event.id, entry);
    return entry;
  }

  /** The append failed: nobody will read the event. */
  unregister(entry: Awaited | undefined): void {
    if (entry !== undefined && this.awaited.get(entry.delivery.event.id) === entry) this.awaited.delete(entry.delivery.event.id);
  }

  /**
   * After the append: a reader that is already past `position` will not meet
   * the event. If the event is new (past the head from before the append),
   * the reader found its start after the commit: it was subscribed first, so
   * it gets the event now. Otherwise the publish repeated an id the log
   * already held: a duplicate, settled `skipped`.
   */
  appended(entry: Awaited | undefined, position: number): void {
    if (position > this.appendedUpTo) this.appendedUpTo = position;
    if (entry === undefined) return;
    for (const subscription of entry.waiting) {
      const reader = this.readers.get(subscription)!;
      if (reader.cursor === undefined || reader.cursor < position) continue;
      entry.waiting.delete(subscription);
      if (entry.headBefore !== undefined && position > entry.headBefore) subscription.enqueue(entry.delivery);
      else entry.delivery.record(subscription, 'skipped', undefined, 0);
    }
    if (entry.waiting.size === 0) this.awaited.delete(entry.delivery.event.id);
  }

  private catchUpAwaited(reader: LogReader): void {
    for (const entry of this.awaited.values()) {
      const position = entry.delivery.event.sequence;
      if (position === undefined || !entry.waiting.has(reader.subscription)) continue;
      this.appended(entry, position);
    }
  }

  deliveryFor(subscription: Subscription, logged: LoggedEvent): Delivery | undefined {
    const entry = this.awaited.get(logged.event.id);
    if (entry !== undefined && entry.waiting.delete(subscription)) {
      if (entry.waiting.size === 0) this.awaited.delete(logged.event.id);
      if (entry.delivery.event.sequence === undefined) entry.delivery.event = logged.event;
      return entry.delivery;
    }
    if (!isFor(subscription, logged)) return undefined;
    const seq = this.host.nextSeq();
    const event = logged.event;
    return new Delivery(
      event,
      [subscription],
      seq,
      this.host.measure && isSampled(seq) ? performance.now() : 0,
      event.expirytime === undefined ? 0 : expiryOf(event),
    );
  }

  reportError(error: Error, origin: string): void {
    this.host.reportError(error, origin);
  }

  /** Stores a dead letter of a durable subscription; its checkpoint waits for the write. */
  storeDeadLetter(subscription: Subscription, letter: DeadLetter): void {
    const position = letter.event.sequence;
    const reader = this.readers.get(subscription);
    if (reader === undefined || position === undefined) return;
    const stored = this.store.addDeadLetter(toStored(letter, position));
    reader.storingDeadLetter(position, stored);
    stored.catch((error: unknown) =>
      this.host.reportError(toError(error), `storing a dead letter of "${subscription.name}"`),
    );
  }

  async lag(subscription: Subscription): Promise<Lag> {
    const reader = this.readers.get(subscription);
    if (reader === undefined) {
      throw new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', `subscription "${subscription.name}" is not durable`);
    }
    return reader.lag();
  }
}

/** Whether a logged event is routed to `subscription`, as a publish would have routed it. */
function isFor(subscription: Subscription, logged: LoggedEvent): boolean {
  const recipients = logged.recipients;
  if (recipients === 'all') return true;
  if (recipients !== undefined) return recipients.includes(subscription.name);
  const event = logged.event;
  if (subscription.subjects !== undefined && (event.subject === undefined || !subscription.subjects.has(event.subject))) return false;
  return subscription.patterns.some((pattern) => pattern.matches(event.type));
}

function toStored(letter: DeadLetter, position: number): StoredDeadLetter {
  const error = letter.error as Error & { code?: unknown };
  return {
    id: letter.id,
    subscription: letter.subscription,
    position,
    event: letter.event,
    error: { name: error.name, message: error.message, ...(typeof error.code === 'string' ? { code: error.code } : {}) },
    attempts: letter.attempts,
    failedAt: letter.failedAt,
  };
}

/** A stored dead letter back in the bus's in-memory form. */
export function fromStored(stored: StoredDeadLetter): DeadLetter {
  const error = stored.error.code === undefined
    ? Object.assign(new Error(stored.error.message), { name: stored.error.name })
    : Object.assign(new Error(stored.error.message), { name: stored.error.name, code: stored.error.code });
  return {
    id: stored.id,
    subscription: stored.subscription,
    event: stored.event as BusbarEvent,
    error,
    attempts: stored.attempts,
    failedAt: stored.failedAt,
  };
}
