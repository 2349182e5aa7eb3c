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
 * receipt, and stores outcomes in a flat array allocated on the first
 * settlement, so an event nobody awaits costs one object and one array.
 */
export class Delivery<E extends BusbarEvent = BusbarEvent> implements Receipt<E>, Prioritized {
  readonly event: E;
  readonly targets: readonly Recipient[];
  readonly seq: number;
  readonly priority: number;
  /** `performance.now()` at publish, or 0 when stats are off. */
  readonly publishedAt: number;
  /** Epoch ms after which the event is expired, or 0. */
  readonly expiresAt: number;
  private remaining: number;
  // [status, value-or-error, attempts] per target, by target index.
  private outcomes: unknown[] | undefined;
  private resolveSettled: ((results: DeliveryResult[]) => void) | undefined;
  private settledPromise: Promise<DeliveryResult[]> | undefined;

  constructor(
    event: E,
    targets: readonly Recipient[],
    seq: number,
    publishedAt: number,
    expiresAt: number,
  ) {
    this.event = event;
    this.targets = targets;
    this.seq = seq;
    this.priority = event.priority ?? 0;
    this.publishedAt = publishedAt;
    this.expiresAt = expiresAt;
    this.remaining = targets.length;
    this.outcomes = undefined;
    this.resolveSettled = undefined;
    this.settledPromise = undefined;
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

  /** Records how `target` ended; each target records exactly once. */
  record(target: Recipient, status: DeliveryStatus, value: unknown, attempts: number): void {
    const index = this.targets.length === 1 ? 0 : this.targets.indexOf(target);
    const outcomes = (this.outcomes ??= new Array(this.targets.length * 3));
    if (outcomes[index * 3] !== undefined) return;
    outcomes[index * 3] = status;
    outcomes[index * 3 + 1] = value;
    outcomes[index * 3 + 2] = attempts;
    if (--this.remaining === 0 && this.resolveSettled !== undefined)
      this.resolveSettled(this.results());
  }

  /** The status of `target`, or `pending` if it has not settled. */
  statusOf(target: Recipient): DeliveryStatus | 'pending' {
    const index = this.targets.indexOf(target);
    return (this.outcomes?.[index * 3] as DeliveryStatus | undefined) ?? 'pending';
  }

  results(): DeliveryResult[] {
    const outcomes = this.outcomes ?? [];
    return this.targets.map((target, index): DeliveryResult => {
      const subscription = target.name;
      const status = outcomes[index * 3] as DeliveryStatus;
      const value = outcomes[index * 3 + 1];
      const attempts = outcomes[index * 3 + 2] as number;
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
