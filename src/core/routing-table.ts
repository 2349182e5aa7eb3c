import type { StandardSchemaV1 } from './schema.ts';
import type { Subscription } from './subscription.ts';
import { assertTopic } from './topic.ts';

/** A topic registered on the bus, optionally with a schema for its data. */
export interface TopicDefinition {
  readonly schema?: StandardSchemaV1 | undefined;
  readonly description?: string | undefined;
}

/** One topic with the subscriptions its events go to, resolved ahead of time. */
export class Route {
  readonly topic: string;
  /** Replaced, never mutated, so a publish iterating it is never disturbed by (un)subscribe. */
  subscriptions: readonly Subscription[] = [];
  /** Some subscription filters by subject: targets must be chosen per event. */
  bySubject = false;
  definition: TopicDefinition | undefined = undefined;
  published = 0;

  constructor(topic: string) {
    this.topic = topic;
  }

  refresh(subscriptions: readonly Subscription[]): void {
    this.subscriptions = subscriptions;
    this.bySubject = subscriptions.some((subscription) => subscription.subjects !== undefined);
  }
}

/**
 * Topic → subscriptions, kept current as subscriptions and topics come and
 * go, so publishing is one map lookup rather than a match per pattern.
 * Topics seen only in passing (not registered) are evicted past `capacity`,
 * so publishing to endless distinct topics cannot grow memory without bound.
 */
export class RoutingTable {
  private readonly routes = new Map<string, Route>();
  private readonly subscriptions: Subscription[] = [];
  private readonly byName = new Map<string, Subscription>();
  private readonly capacity: number;
  /** Publish counts of evicted routes, so totals stay right. */
  evictedPublished = 0;

  constructor(capacity = 10_000) {
    this.capacity = capacity;
  }

  /** The route for `topic`, created (and validated) on first use. */
  route(topic: string): Route {
    const existing = this.routes.get(topic);
    if (existing !== undefined) return existing;
    assertTopic(topic);
    if (this.routes.size >= this.capacity) this.evictOne();
    const route = new Route(topic);
    route.refresh(this.subscriptions.filter((subscription) => matchesAny(subscription, topic)));
    this.routes.set(topic, route);
    return route;
  }

  find(topic: string): Route | undefined {
    return this.routes.get(topic);
  }

  add(subscription: Subscription): void {
    this.subscriptions.push(subscription);
    this.byName.set(subscription.name, subscription);
    for (const route of this.routes.values()) {
      if (matchesAny(subscription, route.topic))
        route.refresh([...route.subscriptions, subscription]);
    }
  }

  remove(subscription: Subscription): void {
    const index = this.subscriptions.indexOf(subscription);
    if (index === -1) return;
    this.subscriptions.splice(index, 1);
    this.byName.delete(subscription.name);
    for (const route of this.routes.values()) {
      if (route.subscriptions.includes(subscription)) {
        route.refresh(route.subscriptions.filter((each) => each !== subscription));
      }
    }
  }

  all(): readonly Subscription[] {
    return this.subscriptions;
  }

  get(name: string): Subscription | undefined {
    return this.byName.get(name);
  }

  routesInUse(): IterableIterator<Route> {
    return this.routes.values();
  }

  private evictOne(): void {
    for (const [topic, route] of this.routes) {
      if (route.definition === undefined) {
        this.evictedPublished += route.published;
        this.routes.delete(topic);
        return;
      }
    }
  }
}

function matchesAny(subscription: Subscription, topic: string): boolean {
  return subscription.patterns.some((pattern) => pattern.matches(topic));
}
