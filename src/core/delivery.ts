import type { BusbarEvent } from './event.ts';
import type { Prioritized } from './ordered-queue.ts';
import type { DeliveryResult, DeliveryStatus } from './results.ts';

/** What `publish` resolves to. */
export interface Receipt<E extends BusbarEvent = BusbarEvent> {
  /** The event id. */
  readonly id: string;
  readonly event: E;
  /** The log position, when the bus has a store. */
  readonly sequence: number | undefined;
  /** Names of the subscriptions the event was handed to. */
  readonly recipients: readonly string[];
  /** One result per recipient, once every one of them has settled. */
  settled(): Promise<DeliveryResult[]>;
}

/** The part of a subscription a delivery needs to know. */
export interface Recipient {
  readonly name: string;
}

/**
 * One published event on its way to its recipients. It doubles as the
 * receipt and keeps the first recipient's outcome in fields (most events have
 * one), the others' in an array made on demand, so an event nobody awaits
 * costs one object.
 */
export class Delivery<E extends BusbarEvent = BusbarEvent> implements Receipt<E>, Prioritized {
  // Not readonly: with a store, the delivery exists before the append and
  // gets the event stamped with its log position once that commits.
  event: E;
  readonly targets: readonly Recipient[];
  readonly seq: number;
  readonly priority: number;
  /** `performance.now()` at publish when this delivery's latency is sampled, else 0. */
  readonly publishedAt: number;
  /** Epoch ms after which the event is expired, or 0. */
  readonly expiresAt: number;
  private remaining: number;
  private firstStatus: DeliveryStatus | undefined = undefined;
  private firstValue: unknown = undefined;
  private firstAttempts = 0;
  // [status, value-or-error, attempts] for targets 1..n-1.
  private others: unknown[] | undefined = undefined;
  private resolveSettled: ((results: DeliveryResult[]) => void) | undefined = undefined;
  private settledPromise: Promise<DeliveryResult[]> | undefined = undefined;

  constructor(event: E, targets: readonly Recipient[], seq: number, publishedAt: number, expiresAt: number) {
    this.event = event;
    this.targets = targets;
    this.seq = seq;
    this.priority = event.priority ?? 0;
    this.publishedAt = publishedAt;
    this.expiresAt = expiresAt;
    this.remaining = targets.length;
  }

  get id(): string {
    return this.event.id;
  }

  get sequence(): number | undefined {
    return this.event.sequence;
  }

  get recipients(): readonly string[] {
    return this.targets.map((target) => target.name);
  }

  get isSettled(): boolean {
    return this.remaining === 0;
  }

  settled(): Promise<DeliveryResult[]> {
    if (this.remaining === 0) return Promise.resolve(this.results());
    this.settledPromise ??= new Promise((resolve) => {
      this.resolveSettled = resolve;
    });
    return this.settledPromise;
  }

  /** Records how `target` ended; the first record per target wins. */
  record(target: Recipient, status: DeliveryStatus, value: unknown, attempts: number): void {
    const index = this.targets[0] === target ? 0 : this.targets.indexOf(target);
    if (index === 0) {
      if (this.firstStatus !== undefined) return;
      this.firstStatus = status;
      this.firstValue = value;
      this.firstAttempts = attempts;
    } else {
      const others = (this.others ??= new Array((this.targets.length - 1) * 3));
      const at = (index - 1) * 3;
      if (others[at] !== undefined) return;
      others[at] = status;
      others[at + 1] = value;
      others[at + 2] = attempts;
    }
    if (--this.remaining === 0 && this.resolveSettled !== undefined) this.resolveSettled(this.results());
  }

  /** The status of `target`, or `pending` if it has not settled. */
  statusOf(target: Recipient): DeliveryStatus | 'pending' {
    const index = this.targets.indexOf(target);
    const status = index === 0 ? this.firstStatus : (this.others?.[(index - 1) * 3] as DeliveryStatus | undefined);
    return status ?? 'pending';
  }

  results(): DeliveryResult[] {
    return this.targets.map((target, index): DeliveryResult => {
      const subscription = target.name;
      const at = (index - 1) * 3;
      const status = (index === 0 ? this.firstStatus : this.others?.[at]) as DeliveryStatus;
      const value = index === 0 ? this.firstValue : this.others?.[at + 1];
      const attempts = (index === 0 ? this.firstAttempts : this.others?.[at + 2]) as number;
      switch (status) {
        case 'completed':
          return { subscription, status, value, attempts };
        case 'skipped':
          return { subscription, status, attempts };
        case 'failed':
          return { subscription, status, error: value as Error, attempts };
        case 'cancelled':
          return { subscription, status, error: value as Error };
        default:
          return { subscription, status };
      }
    });
  }
}

/**
 * Whether the delivery with this bus sequence number has its latency
 * measured. Clock reads cost tens of nanoseconds on some virtual machines, a
 * large share of a delivery, so past the first thousand events one in
 * sixteen is timed; percentiles and means from that sample stay unbiased.
 */
export function isSampled(seq: number): boolean {
  return seq <= 1024 || (seq & 15) === 0;
}
