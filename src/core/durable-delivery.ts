import type { DeadLetter } from './dead-letters.ts';
import type { Delivery } from './delivery.ts';
import { BusbarError, toError } from './errors.ts';
import type { BusbarEvent } from './event.ts';
import type { EventLog, LoggedEvent, StoredDeadLetter } from './event-log.ts';
import { type Lag, LogReader, type ReaderHost, type StartFrom } from './log-reader.ts';
import type { Subscription } from './subscription.ts';

/** What the durable side needs from its bus. */
export interface DurableHost {
  newDelivery(event: BusbarEvent, targets: readonly Subscription[]): Delivery;
  reportError(error: Error, origin: string): void;
}

/** A locally published delivery waiting for the readers of its durable recipients. */
interface PendingDelivery {
  delivery: Delivery;
  /** Durable recipients whose reader has not taken it yet. */
  waiting: Set<Subscription>;
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
  private readonly awaited = new Map<string, PendingDelivery>();
  /** Dead letters being written, by id: removing one must wait for its write. */
  private readonly lettersBeingStored = new Map<string, Promise<void>>();

  constructor(store: EventLog, host: DurableHost) {
    this.store = store;
    this.host = host;
  }

  /** Starts reading the log for `subscription`. */
  attach(subscription: Subscription, start: StartFrom): LogReader {
    const reader = new LogReader(this, subscription, start);
    this.readers.set(subscription, reader);
    return reader;
  }

  /** Resolves once every reader has taken the log up to its head as of now. */
  async caughtUp(): Promise<void> {
    if (this.readers.size === 0) return;
    const head = await this.store.head();
    await Promise.all([...this.readers.values()].map((reader) => reader.reached(head)));
  }

  isDurable(subscription: Subscription): boolean {
    return this.readers.has(subscription);
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

  /** Resolves once the readers of these recipients know where they start; undefined if they all do. */
  starting(durable: readonly Subscription[]): Promise<unknown> | undefined {
    let waits: Promise<void>[] | undefined;
    for (const subscription of durable) {
      const reader = this.readers.get(subscription);
      if (reader !== undefined && reader.cursor === undefined) (waits ??= []).push(reader.ready);
    }
    return waits === undefined ? undefined : Promise.all(waits);
  }

  /** Registers a local publish before its append, for its durable recipients. */
  register(delivery: Delivery, durable: Subscription[]): PendingDelivery | undefined {
    if (durable.length === 0) return undefined;
    // The same id published again: the log keeps it once, and the readers
    // hand on the first delivery; this one only learns it was a duplicate.
    if (this.awaited.has(delivery.event.id)) {
      for (const subscription of durable) delivery.record(subscription, 'skipped', undefined, 0);
      return undefined;
    }
    const entry: PendingDelivery = { delivery, waiting: new Set(durable) };
    this.awaited.set(delivery.event.id, entry);
    return entry;
  }

  /** The append failed: nobody will read the event. */
  unregister(entry: PendingDelivery | undefined): void {
    if (entry !== undefined && this.awaited.get(entry.delivery.event.id) === entry) this.awaited.delete(entry.delivery.event.id);
  }

  /**
   * After the append. Every reader knew its start before the append began
   * (`starting`), and meets a new event in the log; a reader already past
   * `position` without having taken it means the log held the id before: the
   * publish was a duplicate, settled `skipped` for that reader.
   */
  appended(entry: PendingDelivery | undefined, position: number): void {
    if (entry === undefined) return;
    for (const subscription of entry.waiting) {
      const reader = this.readers.get(subscription);
      if (reader === undefined || reader.stopped) {
        // Unsubscribed while the append was in flight.
        entry.waiting.delete(subscription);
        entry.delivery.record(subscription, 'cancelled', new BusbarError('BUSBAR_ERR_CLOSED', 'the subscription was removed'), 0);
        continue;
      }
      if (reader.cursor === undefined || reader.cursor < position) continue;
      entry.waiting.delete(subscription);
      entry.delivery.record(subscription, 'skipped', undefined, 0);
    }
    if (entry.waiting.size === 0) this.awaited.delete(entry.delivery.event.id);
  }

  deliveryFor(subscription: Subscription, logged: LoggedEvent): Delivery | undefined {
    const entry = this.awaited.get(logged.event.id);
    if (entry !== undefined && entry.waiting.delete(subscription)) {
      if (entry.waiting.size === 0) this.awaited.delete(logged.event.id);
      if (entry.delivery.event.sequence === undefined) entry.delivery.event = logged.event;
      return entry.delivery;
    }
    return isFor(subscription, logged) ? this.host.newDelivery(logged.event, [subscription]) : undefined;
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
    this.lettersBeingStored.set(letter.id, stored);
    stored
      .catch((error: unknown) =>
        this.host.reportError(toError(error), `storing a dead letter of "${subscription.name}"`),
      )
      .finally(() => this.lettersBeingStored.delete(letter.id));
  }

  /** Removes a stored dead letter, after its own write if that is still in flight. */
  async removeDeadLetter(id: string): Promise<void> {
    await this.lettersBeingStored.get(id)?.catch(() => {});
    await this.store.removeDeadLetter(id);
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
  return subscription.acceptsSubject(event.subject) && subscription.patterns.some((pattern) => pattern.matches(event.type));
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
  const { name, message, code } = stored.error;
  const error = Object.assign(new Error(message), code === undefined ? { name } : { name, code });
  return {
    id: stored.id,
    subscription: stored.subscription,
    event: stored.event as BusbarEvent,
    error,
    attempts: stored.attempts,
    failedAt: stored.failedAt,
  };
}
