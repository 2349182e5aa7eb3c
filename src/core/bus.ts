import type {
  Bus,
  BusOptions,
  BusStats,
  CloseReport,
  Health,
  HealthProblem,
  InflightEvent,
  NotifyOptions,
  PublishOptions,
  RoutingOptions,
  SubscriptionHandle,
  TopicInfo,
} from './bus-types.ts';
import { parseCloudEvent } from './cloudevents.ts';
import {
  type DeadLetter,
  type DeadLetterFilter,
  DeadLetterList,
  noticeOf,
} from './dead-letters.ts';
import { Delivery, isSampled } from './delivery.ts';
import { DurableDelivery, type DurableHost, fromStored } from './durable-delivery.ts';
import { BusbarError, OverloadError, toError } from './errors.ts';
import { type BusbarEvent, buildEvent, expiryOf, nowRfc3339 } from './event.ts';
import { runAndNotify } from './event-source.ts';
import { compilePattern, type Pattern } from './pattern.ts';
import { type Route, RoutingTable, type TopicDefinition } from './routing-table.ts';
import { isStandardSchema, validateData } from './schema.ts';
import { checkStartFrom, type Lag } from './log-reader.ts';
import { Subscription, type SubscriptionHost } from './subscription.ts';
import type { Handler, SubscriptionOptions } from './subscription-options.ts';
import type { EventMap } from './typed-events.ts';

/** Topic of the event published for every dead letter. */
export const DEAD_LETTER_TOPIC = 'busbar.dead_letter';

const NAME = /^[A-Za-z0-9_.:-]{1,128}$/;

/**
 * Creates an event bus. Without a `store` it is in-memory (at-most-once, lost
 * on crash); with one, publish resolves once the event is committed and
 * subscriptions are durable (at-least-once, resumed from a checkpoint).
 *
 * @example
 * ```ts
 * type Events = { 'order.created': { id: string; total: number } };
 * const bus = createBus<Events>();
 * bus.subscribe('mailer', 'order.*', (event) => `mailed ${event.data.id}`);
 * const receipt = await bus.publish('order.created', { id: 'o-1', total: 42 });
 * console.log(await receipt.settled()); // [{ subscription: 'mailer', status: 'completed', value: 'mailed o-1', attempts: 1 }]
 * ```
 */
export function createBus<Events extends EventMap = EventMap>(
  options: BusOptions = {},
): Bus<Events> {
  return new EventBus(options) as unknown as Bus<Events>;
}

class EventBus implements SubscriptionHost, DurableHost {
  readonly measure: boolean;
  private readonly source: string;
  private readonly strict: boolean;
  readonly stuckAfter: number;
  private readonly store: BusOptions['store'];
  private readonly durable: DurableDelivery | undefined;
  readonly ready: Promise<void>;
  private readonly onError: (error: Error, origin: string) => void;
  private readonly table = new RoutingTable();
  private readonly letters: DeadLetterList;
  private readonly startedAt = Date.now();
  private seq = 0;
  private publishedCount = 0;
  private deliveredCount = 0;
  private deadLetteredCount = 0;
  private latencySum = 0;
  private latencyCount = 0;
  private closing = false;
  private closeReport: Promise<CloseReport> | undefined;
  /** Unsubscribed but still finishing what they had queued. */
  private readonly draining = new Set<Subscription>();
  // Counters of subscriptions that are gone, so bus totals never go down.
  private retired = { expired: 0, dropped: 0 };

  constructor(options: BusOptions) {
    this.source = options.source ?? 'busbar';
    if (typeof this.source !== 'string' || this.source.length === 0) {
      throw new BusbarError(
        'BUSBAR_ERR_INVALID_ARGUMENT',
        'option "source" must be a non-empty string',
      );
    }
    this.strict = options.strict ?? false;
    this.measure = options.stats ?? true;
    this.stuckAfter = options.stuckAfter ?? 60_000;
    this.store = options.store;
    this.letters = new DeadLetterList(options.deadLetterLimit ?? 10_000);
    this.durable = this.store === undefined ? undefined : new DurableDelivery(this.store, this);
    this.onError =
      options.onError ??
      ((error, origin) =>
        process.emitWarning(`${origin}: ${error.message}`, { code: 'BUSBAR_WARNING' }));
    this.ready = this.loadDeadLetters();
    // Reported for everyone; `ready` rejects only for those who await it.
    this.ready.catch((error: unknown) => this.reportError(toError(error), 'loading stored dead letters'));
  }

  get closed(): boolean {
    return this.closing;
  }

  private async loadDeadLetters(): Promise<void> {
    if (this.store === undefined) return;
    for (const stored of await this.store.listDeadLetters()) this.letters.restore(fromStored(stored));
  }

  publish(topic: string, data: unknown, options?: PublishOptions): Promise<Delivery> {
    return this.publishOn(topic, data, options, this.strict);
  }

  /** `strict` is false for Busbar's own topics, which need no registering. */
  private publishOn(topic: string, data: unknown, options: PublishOptions | undefined, strict: boolean): Promise<Delivery> {
    // Not an async function: the common case (no schema, no log, room in
    // every queue) settles with one resolved promise instead of a chain.
    try {
      if (this.closing) throw closedError();
      const route = this.table.route(topic);
      if (route.definition?.schema !== undefined) return this.publishValidated(route, data, options);
      if (strict && route.definition === undefined) throw unknownTopic(topic);
      const event = buildEvent(topic, data, options, this.source);
      if (this.store === undefined && options?.to === undefined) {
        const delivery = this.enqueue(event, route, options);
        return delivery instanceof Delivery ? Promise.resolve(delivery) : delivery;
      }
      return this.dispatch(event, route, options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private async publishValidated(route: Route, data: unknown, options: PublishOptions | undefined): Promise<Delivery> {
    const valid = await validateData(route.topic, route.definition!.schema!, data);
    return this.dispatch(buildEvent(route.topic, valid, options, this.source), route, options);
  }

  async publishEvent(input: unknown, options?: RoutingOptions): Promise<Delivery> {
    if (this.closing) throw closedError();
    // Awaited only when a schema is asynchronous: otherwise the append starts
    // in this turn, so concurrent publishes are logged in call order.
    const admitted = this.admitEvent(input);
    const event = admitted instanceof Promise ? await admitted : admitted;
    return this.dispatch(event, this.table.route(event.type), options);
  }

  async publishEvents(inputs: readonly unknown[], options?: RoutingOptions): Promise<Delivery[]> {
    if (this.closing) throw closedError();
    if (!Array.isArray(inputs)) {
      throw new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', 'publishEvents takes an array of events');
    }
    // Every event is checked before any is published: bad input publishes nothing.
    const admitted = inputs.map((input) => this.admitEvent(input));
    const events = admitted.some((each) => each instanceof Promise) ? await Promise.all(admitted) : (admitted as BusbarEvent[]);
    if (this.closing) throw closedError();
    const routes = events.map((event) => this.table.route(event.type));
    if (this.durable !== undefined) return this.dispatchDurably(this.durable, events, routes, options);
    const deliveries: Delivery[] = [];
    for (let i = 0; i < events.length; i++) {
      const delivery = this.enqueue(events[i]!, routes[i]!, options);
      deliveries.push(delivery instanceof Promise ? await delivery : delivery);
    }
    return deliveries;
  }

  /**
   * Parses and validates an event from outside: its shape, its topic's
   * schema, strict mode, a time. A promise only if the schema is asynchronous.
   */
  private admitEvent(input: unknown): BusbarEvent | Promise<BusbarEvent> {
    const event = parseCloudEvent(input);
    const route = this.table.route(event.type);
    if (route.definition?.schema !== undefined) {
      const data = validateData(event.type, route.definition.schema, event.data);
      if (data instanceof Promise) return data.then((valid) => stamped(valid === event.data ? event : { ...event, data: valid }));
      return stamped(data === event.data ? event : { ...event, data });
    }
    if (this.strict && route.definition === undefined) throw unknownTopic(event.type);
    return stamped(event);
  }

  /** The slow path: validated or routed by name, or committed to the store first. */
  private dispatch(event: BusbarEvent, route: Route, options: RoutingOptions | undefined): Promise<Delivery> {
    if (this.durable !== undefined) {
      return this.dispatchDurably(this.durable, [event], [route], options).then((deliveries) => deliveries[0]!);
    }
    return Promise.resolve(this.enqueue(event, route, options));
  }

  /**
   * Commits the events in one append (atomic, at consecutive positions),
   * then hands them on: durable recipients get them from their log readers
   * (which meet the deliveries registered here first), the others straight
   * into their queues, as without a store.
   */
  private async dispatchDurably(
    durable: DurableDelivery,
    events: readonly BusbarEvent[],
    routes: readonly Route[],
    options: RoutingOptions | undefined,
  ): Promise<Delivery[]> {
    const everyTarget: (readonly Subscription[])[] = [];
    const direct: Subscription[][] = [];
    const durableTargets: Subscription[][] = [];
    for (let i = 0; i < events.length; i++) {
      const targets = this.targetsOf(events[i]!, routes[i]!, options);
      everyTarget.push(targets);
      const toQueue: Subscription[] = [];
      const toReader: Subscription[] = [];
      for (const target of targets) (durable.isDurable(target) ? toReader : toQueue).push(target);
      // Checked before the commit: an event in the log cannot be refused any more.
      for (const target of toQueue) {
        if (target.overflow === 'reject' && target.hasNoRoom) throw overloaded(target, events[i]!);
      }
      direct.push(toQueue);
      durableTargets.push(toReader);
    }
    // A reader still finding its start (a subscription made just now) must
    // find it before this append, or the start could land past the event.
    // Waiting publishes resume in call order, so their positions keep it.
    const starting = durable.starting(durableTargets.flat());
    if (starting !== undefined) await starting;
    const deliveries = events.map((event, i) => this.newDelivery(event, everyTarget[i]!));
    const registered = deliveries.map((delivery, i) => durable.register(delivery, durableTargets[i]!));
    const recipients = options?.to !== undefined ? [...new Set(options.to)] : options?.broadcast === true ? 'all' : undefined;
    let positions: readonly number[];
    try {
      positions = await durable.store.append(events, recipients === undefined ? undefined : { recipients });
    } catch (error) {
      for (const entry of registered) durable.unregister(entry);
      throw error;
    }
    let admissions: Promise<void>[] | undefined;
    for (let i = 0; i < deliveries.length; i++) {
      const delivery = deliveries[i]!;
      const position = positions[i]!;
      if (delivery.event.sequence === undefined) delivery.event = Object.freeze({ ...events[i]!, sequence: position });
      durable.appended(registered[i], position);
      this.countPublished(routes[i]!);
      if (direct[i]!.length === 0) continue;
      const admitted = this.hand(delivery, direct[i]!);
      if (admitted !== undefined) (admissions ??= []).push(...admitted);
    }
    return admissions === undefined ? deliveries : Promise.all(admissions).then(() => deliveries);
  }

  newDelivery(event: BusbarEvent, targets: readonly Subscription[]): Delivery {
    const seq = ++this.seq;
    return new Delivery(
      event,
      targets,
      seq,
      this.measure && isSampled(seq) ? performance.now() : 0,
      event.expirytime === undefined ? 0 : expiryOf(event),
    );
  }

  /** Offers `delivery` to each target; returns the admissions of those full with `wait`. */
  private hand(delivery: Delivery, targets: readonly Subscription[]): Promise<void>[] | undefined {
    let admissions: Promise<void>[] | undefined;
    for (let i = 0; i < targets.length; i++) {
      const admission = targets[i]!.offer(delivery);
      if (admission !== undefined) (admissions ??= []).push(admission);
    }
    return admissions;
  }

  /**
   * Hands the event to every target. Throws if one of them is full with
   * policy `reject` (then nobody gets it); returns a promise when one is full
   * with policy `wait`, settled once that queue has admitted it.
   */
  private enqueue(event: BusbarEvent, route: Route, options: RoutingOptions | undefined): Delivery | Promise<Delivery> {
    const targets = this.targetsOf(event, route, options);
    for (let i = 0; i < targets.length; i++) {
      const target = targets[i]!;
      if (target.overflow === 'reject' && target.hasNoRoom) throw overloaded(target, event);
    }
    const delivery = this.newDelivery(event, targets);
    const admissions = this.hand(delivery, targets);
    // Published once the first queue holds it: a publish that then waits,
    // and is refused because the bus closes, has still reached the others.
    // Every target that is not waiting for admission holds it now.
    const enqueued = admissions === undefined || admissions.length < targets.length;
    if (enqueued) this.countPublished(route);
    if (admissions === undefined) return delivery;
    return Promise.all(admissions).then(() => {
      if (!enqueued) this.countPublished(route);
      return delivery;
    });
  }

  private countPublished(route: Route): void {
    route.published++;
    this.publishedCount++;
  }

  private targetsOf(
    event: BusbarEvent,
    route: Route,
    options: RoutingOptions | undefined,
  ): readonly Subscription[] {
    if (options !== undefined) {
      if (options.to !== undefined) return this.named(options.to);
      if (options.broadcast === true) return this.table.all().filter((each) => each.accepting);
    }
    if (!route.bySubject) return route.subscriptions;
    const subject = event.subject;
    return route.subscriptions.filter((each) => each.acceptsSubject(subject));
  }

  private named(names: readonly string[]): Subscription[] {
    if (!Array.isArray(names)) {
      throw new BusbarError(
        'BUSBAR_ERR_INVALID_ARGUMENT',
        'option "to" must be an array of subscription names',
      );
    }
    return [...new Set(names)].map((name) => {
      const subscription = this.table.get(name);
      if (subscription === undefined || !subscription.accepting) throw unknownSubscription(name);
      return subscription;
    });
  }

  subscribe(
    name: string,
    patterns: Pattern | readonly Pattern[],
    handler: Handler<any, any, any>,
    options: SubscriptionOptions<any, any> = {},
  ): SubscriptionHandle {
    if (this.closing) throw closedError();
    if (typeof name !== 'string' || !NAME.test(name)) {
      throw new BusbarError(
        'BUSBAR_ERR_INVALID_ARGUMENT',
        `subscription name ${JSON.stringify(name)} must be 1-128 characters of [A-Za-z0-9_.:-]`,
      );
    }
    if (typeof handler !== 'function') {
      throw new BusbarError(
        'BUSBAR_ERR_INVALID_ARGUMENT',
        `handler of "${name}" must be a function`,
      );
    }
    if (this.table.get(name) !== undefined) {
      throw new BusbarError(
        'BUSBAR_ERR_DUPLICATE_SUBSCRIPTION',
        `a subscription named "${name}" exists`,
        {
          details: { subscription: name },
        },
      );
    }
    const list = Array.isArray(patterns) ? patterns : [patterns as Pattern];
    if (list.length === 0) {
      throw new BusbarError(
        'BUSBAR_ERR_INVALID_PATTERN',
        `subscription "${name}" needs at least one pattern`,
      );
    }
    if (options.from !== undefined) checkStartFrom(options.from);
    const subscription = new Subscription(this, name, list.map(compilePattern), handler, options);
    subscription.ready$.catch(() => {}); // reported through onError; `ready` rejects for those who ask
    let ready = subscription.ready$;
    if (this.durable !== undefined && options.durable !== false) {
      const reader = this.durable.attach(subscription, options.from ?? 'end');
      ready = Promise.all([ready, reader.ready]).then(() => {});
    }
    this.table.add(subscription);
    return {
      name,
      ready,
      unsubscribe: () => this.remove(subscription),
      stats: () => subscription.stats(),
      lag: () => this.lagOf(subscription),
    };
  }

  unsubscribe(name: string): Promise<void> {
    const subscription = this.table.get(name);
    if (subscription === undefined) return Promise.reject(unknownSubscription(name));
    return this.remove(subscription);
  }

  private async remove(subscription: Subscription): Promise<void> {
    if (!subscription.accepting) return;
    this.table.remove(subscription);
    this.draining.add(subscription);
    const removed = closedError('the subscription was removed');
    // The reader stops first: what it already queued is handled, the rest
    // stays in the log for the next subscriber with this name.
    const stopped = this.durable?.detach(subscription, removed);
    subscription.stopAccepting();
    await stopped;
    await subscription.whenIdle();
    if (!this.draining.delete(subscription)) return; // bus.close() took over
    await this.durable?.flush(subscription);
    await subscription.close(removed);
    const stats = subscription.stats();
    this.retired.expired += stats.expired;
    this.retired.dropped += stats.dropped;
  }

  registerTopic(topic: string, definition: TopicDefinition = {}): void {
    if (definition.schema !== undefined && !isStandardSchema(definition.schema)) {
      throw new BusbarError(
        'BUSBAR_ERR_INVALID_ARGUMENT',
        `schema of "${topic}" must implement Standard Schema (zod, valibot, arktype…)`,
      );
    }
    this.table.route(topic).definition = {
      schema: definition.schema,
      description: definition.description,
    };
  }

  unregisterTopic(topic: string): boolean {
    const route = this.table.find(topic);
    if (route?.definition === undefined) return false;
    route.definition = undefined;
    return true;
  }

  topics(): TopicInfo[] {
    const topics: TopicInfo[] = [];
    for (const route of this.table.routesInUse()) {
      if (route.definition !== undefined)
        topics.push({ topic: route.topic, ...route.definition, published: route.published });
    }
    return topics;
  }

  deadLetter(subscription: Subscription, delivery: Delivery, error: Error, attempts: number): void {
    this.deadLetteredCount++;
    const letter = this.letters.add(subscription.name, delivery.event, error, attempts);
    this.durable?.storeDeadLetter(subscription, letter);
    // A failure to handle a dead-letter notice is kept but not announced
    // again, or a catch-all subscriber that always fails would loop forever.
    if (delivery.event.type === DEAD_LETTER_TOPIC || this.closing) return;
    this.publishOn(DEAD_LETTER_TOPIC, noticeOf(letter), { subject: subscription.name }, false).catch(
      (thrown) => this.reportError(toError(thrown), 'publishing a dead-letter notice'),
    );
  }

  delivered(latencyMs: number): void {
    this.deliveredCount++;
    if (latencyMs >= 0) {
      this.latencySum += latencyMs;
      this.latencyCount++;
    }
  }

  reportError(error: Error, origin: string): void {
    try {
      this.onError(error, origin);
    } catch {
      // An error reporter that throws must not take the bus down with it.
    }
  }

  deadLetters(filter?: DeadLetterFilter): DeadLetter[] {
    return this.letters.list(filter);
  }

  async redrive(filter?: DeadLetterFilter): Promise<Delivery[]> {
    const receipts: Delivery[] = [];
    for (const letter of this.letters.list(filter)) {
      const subscription = this.table.get(letter.subscription);
      if (subscription === undefined || !subscription.accepting) continue;
      // Taken off the list before the first await, so a concurrent redrive cannot send it twice.
      if (!this.letters.remove(letter.id)) continue;
      let receipt: Delivery;
      try {
        receipt = await this.enqueue(letter.event, this.table.route(letter.event.type), { to: [letter.subscription] });
      } catch (error) {
        this.letters.restore(letter);
        throw error;
      }
      receipts.push(receipt);
      if (this.durable !== undefined) this.forgetOnceHandled(this.durable, letter, receipt);
    }
    return receipts;
  }

  /**
   * A redriven dead letter leaves the store once its delivery settles; if the
   * bus closes first, it goes back on the list and stays stored.
   */
  private forgetOnceHandled(durable: DurableDelivery, letter: DeadLetter, receipt: Delivery): void {
    receipt.settled().then(([result]) => {
      if (result?.status === 'cancelled') {
        this.letters.restore(letter);
        return;
      }
      durable.removeDeadLetter(letter.id).catch((error: unknown) => this.reportError(toError(error), 'removing a redriven dead letter'));
    });
  }

  lag(name: string): Promise<Lag> {
    const subscription = this.table.get(name);
    if (subscription === undefined) return Promise.reject(unknownSubscription(name));
    return this.lagOf(subscription);
  }

  private lagOf(subscription: Subscription): Promise<Lag> {
    if (this.durable === undefined) {
      return Promise.reject(new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', 'the bus has no store: lag is measured against the log'));
    }
    return this.durable.lag(subscription);
  }

  private *deliveriesInFlight(): IterableIterator<Delivery> {
    const seen = new Set<Delivery>();
    for (const subscription of this.everySubscription()) {
      for (const delivery of subscription.activeDeliveries()) seen.add(delivery);
      for (const delivery of subscription.pendingDeliveries()) seen.add(delivery);
    }
    for (const delivery of seen) if (!delivery.isSettled) yield delivery;
  }

  inflight(): InflightEvent[] {
    const list: InflightEvent[] = [];
    for (const delivery of this.deliveriesInFlight()) {
      const subscriptions: InflightEvent['subscriptions'] = {};
      for (const target of delivery.targets) subscriptions[target.name] = delivery.statusOf(target);
      list.push({ event: delivery.event, subscriptions });
    }
    return list.sort((a, b) => (a.event.id < b.event.id ? -1 : 1));
  }

  fetch(id: string): BusbarEvent | undefined {
    for (const delivery of this.deliveriesInFlight())
      if (delivery.event.id === id) return delivery.event;
    return undefined;
  }

  notify(topic: string, work: () => unknown, options?: NotifyOptions): Promise<Delivery> {
    if (this.closing) return Promise.reject(closedError());
    return runAndNotify(this, topic, work, options);
  }

  private everySubscription(): Subscription[] {
    return [...this.table.all(), ...this.draining];
  }

  async idle(): Promise<void> {
    for (;;) {
      await this.durable?.caughtUp();
      const busy = this.everySubscription().filter((each) => !each.idle);
      if (busy.length === 0) return;
      await Promise.all(busy.map((each) => each.whenIdle()));
    }
  }

  stats(): BusStats {
    const subscriptions = this.table.all().map((each) => each.stats());
    const events_by_type: Record<string, number> = {};
    for (const route of this.table.routesInUse())
      if (route.published > 0) events_by_type[route.topic] = route.published;
    if (this.table.evictedPublished > 0) events_by_type['(evicted)'] = this.table.evictedPublished;
    return {
      total_published: this.publishedCount,
      total_delivered: this.deliveredCount,
      active_subscribers: subscriptions.length,
      queue_size: subscriptions.reduce((sum, each) => sum + each.pending, 0),
      events_by_type,
      average_delivery_latency_ms:
        this.latencyCount === 0 ? 0 : this.latencySum / this.latencyCount,
      uptime_seconds: (Date.now() - this.startedAt) / 1000,
      total_expired:
        this.retired.expired + subscriptions.reduce((sum, each) => sum + each.expired, 0),
      total_dropped:
        this.retired.dropped + subscriptions.reduce((sum, each) => sum + each.dropped, 0),
      total_dead_lettered: this.deadLetteredCount,
      dead_letters: this.letters.size,
      subscriptions,
    };
  }

  health(): Health {
    if (this.closing)
      return { status: 'closed', problems: [{ code: 'closed', message: 'the bus is closed' }] };
    const problems: HealthProblem[] = [];
    for (const subscription of this.table.all()) {
      const name = subscription.name;
      if (subscription.failedSetup !== undefined) {
        problems.push({
          subscription: name,
          code: 'setup-failed',
          message: subscription.failedSetup.message,
        });
      }
      const running = subscription.oldestRunningMs();
      if (running >= this.stuckAfter) {
        problems.push({
          subscription: name,
          code: 'stuck',
          message: `a handler of "${name}" has been running for ${Math.round(running)} ms`,
        });
      }
      if (subscription.size >= subscription.queueLimit * 0.8) {
        problems.push({
          subscription: name,
          code: 'queue-near-limit',
          message: `"${name}" has ${subscription.size} of ${subscription.queueLimit} events queued`,
        });
      }
    }
    return { status: problems.length === 0 ? 'ok' : 'degraded', problems };
  }

  close(options: { deadline?: number } = {}): Promise<CloseReport> {
    this.closeReport ??= this.shutDown(options.deadline ?? 30_000);
    return this.closeReport;
  }

  private async shutDown(deadline: number): Promise<CloseReport> {
    this.closing = true;
    const subscriptions = this.everySubscription();
    this.draining.clear();
    const refusal = closedError();
    // Readers stop taking from the log; what they queued is drained below.
    const stopped = subscriptions.map((each) => this.durable?.detach(each, refusal));
    for (const subscription of subscriptions) subscription.stopAccepting(refusal);
    await Promise.all(stopped);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadlinePassed = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, deadline);
    });
    const drained = await Promise.race([
      Promise.all(subscriptions.map((each) => each.whenIdle())).then(() => true),
      deadlinePassed.then(() => false),
    ]);
    const unfinished: CloseReport['unfinished'] = [];
    const reason = closedError('the bus closed before this event was handled');
    if (!drained) {
      for (const subscription of subscriptions) {
        for (const delivery of subscription.cancelRemaining(reason)) {
          unfinished.push({ subscription: subscription.name, eventId: delivery.event.id, type: delivery.event.type });
        }
      }
    }
    await Promise.all(subscriptions.map((each) => this.durable?.flush(each)));
    await Promise.all(subscriptions.map((each) => each.close(reason, deadlinePassed)));
    clearTimeout(timer);
    return { drained, unfinished };
  }
}

function overloaded(target: Subscription, event: BusbarEvent): OverloadError {
  return new OverloadError(
    `subscription "${target.name}" has ${target.size} events queued (limit ${target.queueLimit}); "${event.type}" was not published`,
    { subscription: target.name, queueLimit: target.queueLimit, topic: event.type },
  );
}

function closedError(message = 'the bus is closed'): BusbarError {
  return new BusbarError('BUSBAR_ERR_CLOSED', message);
}

function unknownSubscription(name: string): BusbarError {
  return new BusbarError('BUSBAR_ERR_UNKNOWN_SUBSCRIPTION', `no subscription named "${name}"`, {
    details: { subscription: name },
  });
}

function unknownTopic(topic: string): BusbarError {
  return new BusbarError(
    'BUSBAR_ERR_UNKNOWN_TOPIC',
    `topic "${topic}" is not registered (the bus is strict)`,
    {
      details: { topic },
    },
  );
}

/** The event as the log takes it: with a time, and without a publisher's `sequence` (the log assigns positions). */
function stamped(event: BusbarEvent): BusbarEvent {
  if (event.time !== undefined && event.sequence === undefined && Object.isFrozen(event)) return event;
  const { sequence: _ignored, ...rest } = event;
  return Object.freeze({ ...rest, time: event.time ?? nowRfc3339() }) as BusbarEvent;
}
