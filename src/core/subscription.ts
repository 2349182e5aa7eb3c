import type { Delivery, Recipient } from './delivery.ts';
import { BusbarError, toError } from './errors.ts';
import type { BusbarEvent } from './event.ts';
import { Invocation, InvocationList } from './invocation.ts';
import { LatencyHistogram } from './latency-histogram.ts';
import { invalidOption, nonNegative, oneOf, positiveInteger, subjectSet } from './option-checks.ts';
import { createOrderedQueue, Deque, type OrderedQueue, type QueueOrder } from './ordered-queue.ts';
import type { CompiledPattern } from './pattern.ts';
import { type DeliveryStatus, skip } from './results.ts';
import { backoffDelay, type RetryPolicy, retryPolicy } from './retry.ts';
import type {
  Handler,
  OverflowPolicy,
  SubscriptionOptions,
  SubscriptionStats,
} from './subscription-options.ts';

/** What a subscription reports back to its bus. */
export interface SubscriptionHost {
  /** Whether latencies are measured (stats on). */
  readonly measure: boolean;
  /** A handler running longer than this (ms) counts as stuck. */
  readonly stuckAfter: number;
  deadLetter(subscription: Subscription, delivery: Delivery, error: Error, attempts: number): void;
  delivered(latencyMs: number): void;
  reportError(error: Error, origin: string): void;
}

// Timeouts are enforced, and running time measured, by a sweep that ticks
// while handlers run (every quarter of the timeout or half the stuck
// threshold, whichever is shorter): an attempt fails once it has surely run
// for the timeout, that is within one tick after it. A timer or a clock read
// per call would cost more than the delivery itself.

interface BlockedPublish {
  delivery: Delivery;
  admit: () => void;
  refuse: (error: Error) => void;
}

const STARTING = 0;
const ACTIVE = 1;
const DRAINING = 2;
const CLOSED = 3;

/**
 * The runtime of one subscription: a bounded queue, a pump that starts
 * handlers up to the allowed concurrency, per-key lanes that keep events with
 * the same key in order, retries, timeouts and counters.
 */
export class Subscription implements Recipient {
  readonly name: string;
  readonly patterns: readonly CompiledPattern[];
  readonly subjects: ReadonlySet<string> | undefined;
  readonly overflow: OverflowPolicy;
  readonly queueLimit: number;
  readonly order: QueueOrder;
  context: unknown;
  /**
   * Told of every delivery this subscription is done with (handled, skipped,
   * expired, dead-lettered or dropped; not cancelled): a durable
   * subscription's checkpoint moves on these.
   */
  onDone: ((delivery: Delivery) => void) | undefined = undefined;

  private readonly host: SubscriptionHost;
  private readonly handler: Handler;
  private readonly filter: ((event: BusbarEvent) => boolean) | undefined;
  private readonly retry: RetryPolicy;
  private readonly timeout: number;
  private readonly minConcurrency: number;
  private readonly maxConcurrency: number;
  private readonly scaleStep: number;
  private readonly teardown: ((context: unknown) => void | Promise<void>) | undefined;

  private readonly queue: OrderedQueue<Delivery>;
  // Events with an ordering key wait in a lane while an earlier one with the
  // same key is in flight. FIFO queues park at take time (so global order is
  // kept), LIFO and priority queues at enqueue time (so a later event cannot
  // overtake an earlier one with the same key).
  private readonly keyed: boolean;
  private readonly parkAtEnqueue: boolean;
  private readonly lanes = new Map<string, Deque<Delivery> | null>();
  private readonly ready = new Deque<Delivery>();
  private parked = 0;
  private running = 0;
  private readonly invocations = new InvocationList();
  private sweeper: ReturnType<typeof setInterval> | undefined = undefined;
  private sweeperHeld = false;
  private generation = 0;
  /** Sweep period, ms: fine enough for both the timeout and the host's stuck threshold. */
  private readonly tick: number;
  private pumpScheduled = false;
  private pumping = false;
  private state = STARTING;
  private setupError: Error | undefined = undefined;
  // Publishes waiting for room (policy `wait`), in call order: room that
  // frees up goes to them first, so a later publish cannot overtake them.
  private readonly blocked = new Deque<BlockedPublish>();
  private idleWaiters: (() => void)[] = [];
  readonly ready$: Promise<void>;

  private readonly histogram = new LatencyHistogram();
  private counts = {
    completed: 0,
    skipped: 0,
    failed: 0,
    retried: 0,
    deadLettered: 0,
    expired: 0,
    dropped: 0,
    cancelled: 0,
  };

  constructor(
    host: SubscriptionHost,
    name: string,
    patterns: readonly CompiledPattern[],
    handler: Handler<any, any, any>,
    options: SubscriptionOptions<any, any>,
  ) {
    this.host = host;
    this.name = name;
    this.patterns = patterns;
    this.handler = handler as Handler;
    this.filter = options.filter;
    this.subjects = subjectSet(options.subject);
    this.overflow = oneOf('overflow', options.overflow ?? 'wait', [
      'wait',
      'reject',
      'drop-oldest',
    ]);
    const order = oneOf('order', options.order ?? 'fifo', ['fifo', 'lifo', 'priority']);
    this.order = order;
    this.queueLimit = positiveInteger('queueLimit', options.queueLimit ?? 10_000);
    this.retry = retryPolicy(options.retry);
    this.timeout = nonNegative('timeout', options.timeout ?? 30_000);
    this.tick = Math.max(1, Math.min(this.timeout === 0 ? Infinity : this.timeout / 4, host.stuckAfter / 2));
    const concurrency = options.concurrency ?? 1;
    if (typeof concurrency === 'number') {
      this.minConcurrency = this.maxConcurrency = positiveInteger('concurrency', concurrency);
      this.scaleStep = 1;
    } else {
      this.minConcurrency = positiveInteger('concurrency.min', concurrency?.min);
      this.maxConcurrency = positiveInteger('concurrency.max', concurrency?.max);
      this.scaleStep = positiveInteger('concurrency.scaleStep', concurrency.scaleStep ?? 10);
      if (this.maxConcurrency < this.minConcurrency) {
        throw invalidOption('concurrency.max', 'at least concurrency.min');
      }
    }
    this.queue = createOrderedQueue<Delivery>(order);
    this.keyed = this.maxConcurrency > 1 || order !== 'fifo';
    this.parkAtEnqueue = order !== 'fifo';
    this.context = options.context;
    this.teardown = options.teardown;
    this.ready$ = this.start(options.setup);
  }

  private async start(setup: SubscriptionOptions<any, any>['setup']): Promise<void> {
    if (setup === undefined) {
      this.state = ACTIVE;
      return;
    }
    try {
      const context = await setup(this.context);
      if (context !== undefined) this.context = context;
    } catch (thrown) {
      this.setupError = toError(thrown);
      this.host.reportError(this.setupError, `setup of subscription "${this.name}"`);
      throw this.setupError;
    } finally {
      if (this.state === STARTING) this.state = ACTIVE;
      this.pump();
    }
  }

  /** Events waiting to be handled. */
  get size(): number {
    return this.queue.size + this.ready.size + this.parked;
  }

  /** Nothing queued, nothing in flight. */
  get idle(): boolean {
    return this.running === 0 && this.size === 0;
  }

  get accepting(): boolean {
    return this.state === STARTING || this.state === ACTIVE;
  }

  /** True when a new event cannot be enqueued now: the queue is full or earlier publishes wait. */
  get hasNoRoom(): boolean {
    return this.blocked.size > 0 || this.size >= this.queueLimit;
  }

  /**
   * Hands `delivery` to the queue under its overflow policy: enqueued if
   * there is room, after dropping the oldest with `drop-oldest`; otherwise
   * returns the admission to wait for (`wait`). `reject` is the caller's to
   * check first, before anyone gets the event.
   */
  offer(delivery: Delivery): Promise<void> | undefined {
    if (!this.hasNoRoom) this.enqueue(delivery);
    else if (this.overflow === 'drop-oldest') {
      this.dropOldest();
      this.enqueue(delivery);
    } else return this.admitLater(delivery);
    return undefined;
  }

  /** Whether an event with this `subject` passes the subscription's subject filter. */
  acceptsSubject(subject: string | undefined): boolean {
    return this.subjects === undefined || (subject !== undefined && this.subjects.has(subject));
  }

  /** Enqueues `delivery` once room frees up, after the publishes already waiting. */
  admitLater(delivery: Delivery): Promise<void> {
    return new Promise((admit, refuse) => this.blocked.push({ delivery, admit, refuse }));
  }

  private admitBlocked(): void {
    while (this.blocked.size > 0 && (this.size < this.queueLimit || this.state === DRAINING)) {
      const waiting = this.blocked.shift()!;
      this.enqueue(waiting.delivery);
      waiting.admit();
    }
  }

  /**
   * Makes room (policy `drop-oldest`) by dropping the event that has waited
   * longest, whether in the queue or held back behind its key.
   */
  dropOldest(): void {
    const queued = this.queue.peekOldest();
    let lane: Deque<Delivery> | undefined;
    for (const each of this.lanes.values()) {
      if (each !== null && each.size > 0 && (lane === undefined || each.peekOldest()!.seq < lane.peekOldest()!.seq)) {
        lane = each;
      }
    }
    let dropped: Delivery | undefined;
    const laneFirst = lane !== undefined && (queued === undefined || (this.order !== 'priority' && lane.peekOldest()!.seq < queued.seq));
    if (laneFirst) {
      dropped = lane!.shift();
      this.parked--;
    } else {
      dropped = this.queue.dropOldest();
      // Only where events park at enqueue does a queued event hold its key.
      if (dropped !== undefined && this.parkAtEnqueue) this.releaseKey(dropped);
    }
    if (dropped === undefined) return;
    this.counts.dropped++;
    dropped.record(this, 'dropped', undefined, 0);
    this.onDone?.(dropped);
  }

  enqueue(delivery: Delivery): void {
    if (this.parkAtEnqueue && this.park(delivery)) return;
    this.queue.push(delivery);
    if (!this.pumpScheduled && !this.pumping && this.running < this.maxConcurrency) {
      this.pumpScheduled = true;
      queueMicrotask(this.pump);
    }
  }

  /** Parks `delivery` behind an earlier event with its key; false if its key is free. */
  private park(delivery: Delivery): boolean {
    const key = delivery.event.partitionkey;
    if (key === undefined) return false;
    const lane = this.lanes.get(key);
    if (lane === undefined) {
      this.lanes.set(key, null);
      return false;
    }
    if (lane === null) this.lanes.set(key, Deque.of(delivery));
    else lane.push(delivery);
    this.parked++;
    return true;
  }

  private readonly pump = (): void => {
    this.pumpScheduled = false;
    if (this.pumping || this.state === STARTING || this.state === CLOSED) return;
    this.pumping = true;
    try {
      while (this.running < this.limit()) {
        let delivery = this.ready.shift();
        if (delivery === undefined) {
          delivery = this.queue.take();
          if (delivery === undefined) break;
          if (this.keyed && !this.parkAtEnqueue && this.park(delivery)) continue;
        }
        if (this.blocked.size > 0) this.admitBlocked();
        this.begin(delivery);
      }
    } finally {
      this.pumping = false;
    }
  };

  private limit(): number {
    if (this.minConcurrency === this.maxConcurrency) return this.maxConcurrency;
    return Math.min(
      this.maxConcurrency,
      this.minConcurrency + Math.floor(this.size / this.scaleStep),
    );
  }

  private begin(delivery: Delivery): void {
    this.running++;
    if (delivery.expiresAt !== 0 && Date.now() > delivery.expiresAt) {
      this.counts.expired++;
      this.finish(delivery, 'expired', undefined, 0, 0);
      return;
    }
    this.invoke(new Invocation(this, delivery, 1, delivery.publishedAt === 0 ? 0 : performance.now()));
  }

  private invoke(invocation: Invocation): void {
    if (this.setupError !== undefined) {
      this.fail(invocation, this.setupError, false);
      return;
    }
    let outcome: unknown;
    try {
      const event = invocation.delivery.event;
      if (this.filter !== undefined && !this.filter(event)) {
        this.succeed(invocation, skip);
        return;
      }
      outcome = this.handler(event, invocation);
    } catch (thrown) {
      this.fail(invocation, thrown, true);
      return;
    }
    if (outcome instanceof Promise || typeof (outcome as PromiseLike<unknown> | null)?.then === 'function') {
      this.track(invocation);
      (outcome instanceof Promise ? outcome : Promise.resolve(outcome)).then(
        (value) => this.succeed(invocation, value),
        (thrown) => this.fail(invocation, thrown, true),
      );
    } else {
      this.succeed(invocation, outcome);
    }
  }

  private track(invocation: Invocation): void {
    this.invocations.add(invocation);
    invocation.generation = this.generation;
    if (this.sweeper === undefined) {
      this.sweeper = setInterval(this.sweep, this.tick);
      this.sweeper.unref();
    }
    // While an attempt with a timeout runs, the sweep must keep the process
    // alive to enforce it; once none runs, a finished bus holds nothing open.
    if (this.timeout !== 0 && !this.sweeperHeld) {
      this.sweeper.ref();
      this.sweeperHeld = true;
    }
  }

  private untrack(invocation: Invocation): void {
    this.invocations.delete(invocation);
    if (this.sweeperHeld && this.invocations.size === 0) {
      this.sweeper!.unref();
      this.sweeperHeld = false;
    }
  }

  /** Sweep ticks an attempt has surely run for (the tick it started in is not counted). */
  private ticksRun(invocation: Invocation): number {
    return this.generation - invocation.generation - 1;
  }

  private readonly sweep = (): void => {
    this.generation++;
    if (this.invocations.size === 0) {
      this.stopSweeper();
      return;
    }
    if (this.timeout === 0) return;
    for (const invocation of this.invocations) {
      if (invocation.done || invocation.backoff !== undefined) continue;
      if (this.ticksRun(invocation) * this.tick >= this.timeout) {
        const error = new BusbarError(
          'BUSBAR_ERR_HANDLER_TIMEOUT',
          `handler of "${this.name}" did not settle within ${this.timeout} ms`,
          { details: { subscription: this.name, timeout: this.timeout, attempt: invocation.attempt } },
        );
        invocation.abort(error);
        this.fail(invocation, error, true);
      }
    }
  };

  private stopSweeper(): void {
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    this.sweeper = undefined;
    this.sweeperHeld = false;
  }

  private succeed(invocation: Invocation, value: unknown): void {
    if (invocation.done) return;
    invocation.done = true;
    this.untrack(invocation);
    const skipped = value === skip;
    if (skipped) this.counts.skipped++;
    else this.counts.completed++;
    this.finish(
      invocation.delivery,
      skipped ? 'skipped' : 'completed',
      skipped ? undefined : value,
      invocation.attempt,
      invocation.startedAt,
    );
  }

  private fail(invocation: Invocation, thrown: unknown, retryable: boolean): void {
    if (invocation.done) return;
    invocation.done = true;
    this.untrack(invocation);
    this.counts.failed++;
    const error = toError(thrown);
    if (retryable && invocation.attempt < this.retry.attempts && this.state !== CLOSED) {
      this.counts.retried++;
      const next = new Invocation(
        this,
        invocation.delivery,
        invocation.attempt + 1,
        invocation.startedAt,
      );
      this.invocations.add(next);
      next.backoff = setTimeout(
        () => {
          next.backoff = undefined;
          this.untrack(next);
          this.invoke(next);
        },
        backoffDelay(this.retry, next.attempt),
      );
      return;
    }
    this.counts.deadLettered++;
    this.host.deadLetter(this, invocation.delivery, error, invocation.attempt);
    this.finish(invocation.delivery, 'failed', error, invocation.attempt, invocation.startedAt);
  }

  private finish(
    delivery: Delivery,
    status: DeliveryStatus,
    value: unknown,
    attempts: number,
    startedAt: number,
  ): void {
    this.running--;
    if (startedAt !== 0) {
      const now = performance.now();
      this.histogram.record(now - startedAt);
      if (status === 'completed' || status === 'skipped')
        this.host.delivered(now - delivery.publishedAt);
    } else if (status === 'completed' || status === 'skipped') {
      this.host.delivered(-1);
    }
    if (this.keyed) this.releaseKey(delivery);
    delivery.record(this, status, value, attempts);
    this.onDone?.(delivery);
    if (this.idleWaiters.length > 0 && this.idle) this.notifyIdle();
    this.pump();
  }

  private releaseKey(delivery: Delivery): void {
    const key = delivery.event.partitionkey;
    if (key === undefined) return;
    const lane = this.lanes.get(key);
    if (lane === undefined) return;
    if (lane === null || lane.size === 0) {
      this.lanes.delete(key);
      return;
    }
    const next = lane.shift()!;
    this.parked--;
    if (this.parkAtEnqueue) this.queue.push(next);
    else this.ready.push(next);
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Resolves when nothing is queued or in flight. */
  whenIdle(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops accepting events; what is queued is still handled. Publishes still
   * waiting for room are refused with `refusal` (the bus is closing) or, without
   * one, let in to be drained too (an unsubscribe).
   */
  stopAccepting(refusal?: Error): void {
    if (this.state === ACTIVE || this.state === STARTING) this.state = DRAINING;
    if (refusal === undefined) this.admitBlocked();
    else this.refuseBlocked(refusal);
  }

  /**
   * Gives up on everything unfinished: queued events and running or
   * backing-off attempts settle as `cancelled` (running handlers see their
   * signal abort). Returns what was cancelled.
   */
  cancelRemaining(reason: Error): Delivery[] {
    this.state = CLOSED;
    this.refuseBlocked(reason);
    const cancelled: Delivery[] = [];
    for (const invocation of [...this.invocations]) {
      if (invocation.backoff !== undefined) clearTimeout(invocation.backoff);
      invocation.done = true;
      invocation.abort(reason);
      cancelled.push(invocation.delivery);
    }
    this.invocations.clear();
    for (const delivery of this.pendingDeliveries()) cancelled.push(delivery);
    while (this.queue.take() !== undefined);
    while (this.ready.shift() !== undefined);
    this.lanes.clear();
    this.parked = 0;
    for (const delivery of cancelled) {
      this.counts.cancelled++;
      delivery.record(this, 'cancelled', reason, 0);
    }
    this.running = 0;
    this.stopSweeper();
    this.notifyIdle();
    return cancelled;
  }

  /**
   * Runs teardown once, after setup has finished (or `setupDeadline` passed,
   * for a setup that never ends); failures are reported, not thrown.
   */
  async close(reason: Error, setupDeadline?: Promise<void>): Promise<void> {
    this.state = CLOSED;
    this.refuseBlocked(reason);
    this.stopSweeper();
    const setupDone = this.ready$.catch(() => {});
    await (setupDeadline === undefined ? setupDone : Promise.race([setupDone, setupDeadline]));
    if (this.teardown === undefined) return;
    try {
      await this.teardown(this.context);
    } catch (thrown) {
      this.host.reportError(toError(thrown), `teardown of subscription "${this.name}"`);
    }
  }

  /** Rejects the publishes still waiting for room; their event settles `cancelled` here. */
  private refuseBlocked(reason: Error): void {
    for (let waiting = this.blocked.shift(); waiting !== undefined; waiting = this.blocked.shift()) {
      this.counts.cancelled++;
      waiting.delivery.record(this, 'cancelled', reason, 0);
      waiting.refuse(reason);
    }
  }

  /** Deliveries waiting (for room, queued, parked or ready), in no particular order. */
  *pendingDeliveries(): IterableIterator<Delivery> {
    for (const waiting of this.blocked.values()) yield waiting.delivery;
    yield* this.queue.values();
    yield* this.ready.values();
    for (const lane of this.lanes.values()) if (lane !== null) yield* lane.values();
  }

  /** Deliveries being handled right now, or waiting to retry. */
  *activeDeliveries(): IterableIterator<Delivery> {
    for (const invocation of this.invocations) yield invocation.delivery;
  }

  /** How long the oldest running attempt has surely been running, ms (to a sweep tick), 0 if none. */
  oldestRunningMs(): number {
    let oldest = 0;
    for (const invocation of this.invocations) {
      if (invocation.backoff !== undefined || invocation.done) continue;
      oldest = Math.max(oldest, this.ticksRun(invocation) * this.tick);
    }
    return oldest;
  }

  get failedSetup(): Error | undefined {
    return this.setupError;
  }

  stats(): SubscriptionStats {
    return {
      name: this.name,
      patterns: this.patterns.map((pattern) => String(pattern.source)),
      pending: this.size,
      inFlight: this.running,
      concurrency: this.limit(),
      queueLimit: this.queueLimit,
      ...this.counts,
      latency: {
        p50: this.histogram.percentile(0.5),
        p99: this.histogram.percentile(0.99),
        mean: this.histogram.mean,
      },
    };
  }
}
