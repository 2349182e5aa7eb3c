import type { Bus } from '../core/bus-types.ts';
import { ConcurrencyError } from '../core/errors.ts';
import { createEvent } from '../core/event.ts';
import { assertTopic } from '../core/topic.ts';
import type { EventStore } from '../store/event-store.ts';
import { type JsonSchema, jsonSchemaValidator } from './json-schema.ts';

/** The stream that keeps the server's topic registrations. */
export const TOPICS_STREAM = 'busbar.topics';
/** The type of its events: each holds every registration, so only the newest is kept. */
export const TOPICS_CHANGED = 'busbar.topics.changed';

/** A topic as registered over HTTP. */
export interface TopicRegistration {
  topic: string;
  schema?: JsonSchema;
  description?: string;
}

/** A registered topic as the API shows it. */
export interface TopicView extends TopicRegistration {
  /** Events published to it since the server started. */
  published: number;
  /** True when the topic validates data (with `schema`, or a schema the embedding program gave). */
  validated: boolean;
}

/**
 * Topic registrations that survive a restart. Each change appends a
 * snapshot of all of them to the `busbar.topics` stream (kept to its newest
 * event), and `open` replays the newest snapshot into the bus, so a JSON
 * Schema registered yesterday is enforced today on every publish path.
 *
 * Changes are serialised within a server and guarded by the stream's
 * expected version across servers sharing a store; a server picks up
 * another's registrations when it restarts.
 *
 * @example
 * ```ts
 * const topics = await TopicRegistry.open(bus, store);
 * await topics.register({ topic: 'order.created', schema: { type: 'object', required: ['id'] } });
 * ```
 */
export class TopicRegistry {
  private readonly bus: Bus;
  private readonly store: EventStore;
  private readonly registrations = new Map<string, TopicRegistration>();
  private version = 0;
  private changes: Promise<unknown> = Promise.resolve();

  private constructor(bus: Bus, store: EventStore) {
    this.bus = bus;
    this.store = store;
  }

  /** Loads the stored registrations and registers them on the bus. */
  static async open(bus: Bus, store: EventStore): Promise<TopicRegistry> {
    const registry = new TopicRegistry(bus, store);
    await registry.reload();
    for (const registration of registry.registrations.values()) registry.apply(registration);
    return registry;
  }

  /** Registers or replaces a topic; an invalid schema throws `BUSBAR_ERR_INVALID_ARGUMENT` and changes nothing. */
  register(registration: TopicRegistration): Promise<{ created: boolean }> {
    assertTopic(registration.topic);
    // Compiled first: a bad schema must fail before anything is stored.
    const schema = registration.schema === undefined ? undefined : jsonSchemaValidator(registration.topic, registration.schema);
    return this.change(async () => {
      const created = this.bus.topics().every((info) => info.topic !== registration.topic);
      await this.save((all) => all.set(registration.topic, registration));
      this.bus.registerTopic(registration.topic, { schema, description: registration.description });
      return { created };
    });
  }

  /** Unregisters a topic; false if it was not registered. */
  unregister(topic: string): Promise<boolean> {
    assertTopic(topic);
    return this.change(async () => {
      if (this.registrations.has(topic)) await this.save((all) => all.delete(topic));
      return this.bus.unregisterTopic(topic);
    });
  }

  /** Every registered topic: those registered here and those the embedding program registered on the bus. */
  list(): TopicView[] {
    return this.bus.topics().map((info) => ({
      ...this.registrations.get(info.topic),
      topic: info.topic,
      description: info.description,
      published: info.published,
      validated: info.schema !== undefined,
    }));
  }

  get(topic: string): TopicView | undefined {
    assertTopic(topic);
    return this.list().find((view) => view.topic === topic);
  }

  private change<T>(work: () => Promise<T>): Promise<T> {
    const next = this.changes.then(work);
    this.changes = next.catch(() => {});
    return next;
  }

  /** Applies `edit` to the registrations and stores the result, re-reading once if another server got there first. */
  private async save(edit: (all: Map<string, TopicRegistration>) => void): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const next = new Map(this.registrations);
      edit(next);
      const snapshot = createEvent(TOPICS_CHANGED, { topics: [...next.values()] }, { source: 'busbar' });
      try {
        const { version } = await this.store.appendToStream(TOPICS_STREAM, [snapshot], {
          expectedVersion: this.version === 0 ? 'no_stream' : this.version,
        });
        // Only the newest snapshot matters: older ones are space to give back.
        if (this.version === 0) await this.store.setStreamMetadata(TOPICS_STREAM, { maxCount: 1 });
        this.version = version;
        this.registrations.clear();
        for (const [topic, registration] of next) this.registrations.set(topic, registration);
        return;
      } catch (error) {
        if (!(error instanceof ConcurrencyError) || attempt > 3) throw error;
        await this.reload();
      }
    }
  }

  private async reload(): Promise<void> {
    const [newest] = await this.store.readStream(TOPICS_STREAM, { direction: 'backward', limit: 1 });
    this.version = newest?.streamVersion ?? 0;
    this.registrations.clear();
    const stored = (newest?.event.data as { topics?: TopicRegistration[] } | undefined)?.topics ?? [];
    for (const registration of stored) this.registrations.set(registration.topic, registration);
  }

  private apply(registration: TopicRegistration): void {
    const schema = registration.schema === undefined ? undefined : jsonSchemaValidator(registration.topic, registration.schema);
    this.bus.registerTopic(registration.topic, { schema, description: registration.description });
  }
}
