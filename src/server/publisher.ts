import type { Bus, TopicInfo } from '../core/bus-types.ts';
import { parseCloudEvent } from '../core/cloudevents.ts';
import { BusbarError } from '../core/errors.ts';
import { type BusbarEvent, nowRfc3339 } from '../core/event.ts';
import { createEventId } from '../core/event-id.ts';
import { validateData } from '../core/schema.ts';
import { forbidden } from './auth.ts';
import type { Accepted, Principal } from './context.ts';

export interface PublisherOptions {
  /** Refuse events of topics that are not registered. */
  strict: boolean;
  /** The bus refuses unregistered topics itself (it was created strict): no need to check before publishing. */
  busIsStrict: boolean;
  /** The `source` of plain-form events that have none. */
  source: string;
}

/**
 * The one way events enter the bus from outside (HTTP, WebSocket), so every
 * path applies the same rules: CloudEvent shape and topic, the caller's
 * publish right, strict mode and the topic's schema, all checked for every
 * event of a batch before any of them is published.
 *
 * @example
 * ```ts
 * const publisher = new Publisher(bus, { strict: false, busIsStrict: false, source: 'busbar' });
 * const [accepted] = await publisher.publish(principal, [{ type: 'order.created', data: { id: 'o-1' } }]);
 * ```
 */
export class Publisher {
  private readonly bus: Bus;
  private readonly options: PublisherOptions;

  constructor(bus: Bus, options: PublisherOptions) {
    this.bus = bus;
    this.options = options;
  }

  /** See `ServerContext.publish`. */
  async publish(principal: Principal, inputs: readonly unknown[]): Promise<Accepted[]> {
    const events = this.parse(principal, inputs);
    if (events.length === 0) return [];
    if (this.options.strict && !this.options.busIsStrict) await this.check(events, false);
    try {
      // The bus validates every event of a batch before it publishes any,
      // then appends them in one transaction at consecutive positions.
      const receipts = events.length === 1 ? [await this.bus.publishEvent(events[0])] : await this.bus.publishEvents(events);
      return receipts.map((receipt) => ({ id: receipt.id, position: positionOf(receipt.sequence) }));
    } catch (error) {
      // The bus does not say which event of a batch failed its schema;
      // checking again, on this failure path only, names it for the client.
      if (events.length > 1 && error instanceof BusbarError && CHECKED_CODES.has(error.code)) await this.check(events, false);
      throw error;
    }
  }

  /**
   * Parses and checks events as `publish` does and returns them ready for a
   * direct store append (`appendToStream`): with schema output as their
   * data, a time, and no `sequence` (the log assigns it).
   */
  async prepare(principal: Principal, inputs: readonly unknown[]): Promise<BusbarEvent[]> {
    const events = this.parse(principal, inputs);
    const checked = await this.check(events, true);
    return checked.map((event) => {
      if (event.time !== undefined && event.sequence === undefined) return event;
      // The log assigns positions: a sequence sent by the publisher is not kept.
      const { sequence: _ignored, ...rest } = event;
      return Object.freeze({ ...rest, time: event.time ?? nowRfc3339() }) as BusbarEvent;
    });
  }

  private parse(principal: Principal, inputs: readonly unknown[]): BusbarEvent[] {
    const events = inputs.map((input, index) => labelled(inputs.length, index, () => parseCloudEvent(this.completed(input))));
    for (const [index, event] of events.entries()) {
      if (!principal.can('publish', event.type)) {
        throw forbidden(`${prefix(events.length, index)}API key "${principal.name}" may not publish to "${event.type}"`, { topic: event.type, index });
      }
    }
    return events;
  }

  /** The plain form `{ type, data, … }` gets what a CloudEvent needs: specversion, id, source and a time. */
  private completed(input: unknown): unknown {
    if (typeof input !== 'object' || input === null || Array.isArray(input) || 'specversion' in input) return input;
    // The time is stamped here, so the bus need not copy the event to add it.
    const now = Date.now();
    return { specversion: '1.0', id: createEventId(now), source: this.options.source, time: nowRfc3339(now), ...input };
  }

  /** Strict mode and schemas; returns the events with the schemas' output as data. */
  private async check(events: BusbarEvent[], withSchemaOutput: boolean): Promise<BusbarEvent[]> {
    if (events.length === 0) return events;
    const topics = new Map<string, TopicInfo>();
    for (const info of this.bus.topics()) topics.set(info.topic, info);
    const checked: BusbarEvent[] = [];
    for (const [index, event] of events.entries()) {
      const topic = topics.get(event.type);
      if (topic === undefined && this.options.strict) {
        throw new BusbarError('BUSBAR_ERR_UNKNOWN_TOPIC', `${prefix(events.length, index)}topic "${event.type}" is not registered (the server is strict)`, {
          details: { topic: event.type, index },
        });
      }
      if (topic?.schema === undefined) {
        checked.push(event);
        continue;
      }
      const schema = topic.schema;
      const data = await labelledAsync(events.length, index, () => validateData(event.type, schema, event.data));
      checked.push(withSchemaOutput && data !== event.data ? Object.freeze({ ...event, data }) : event);
    }
    return checked;
  }
}

const CHECKED_CODES: ReadonlySet<string> = new Set(['BUSBAR_ERR_VALIDATION', 'BUSBAR_ERR_UNKNOWN_TOPIC']);

function positionOf(sequence: number | undefined): number {
  if (sequence === undefined) {
    throw new BusbarError('BUSBAR_ERR_INTERNAL', 'the bus has no store: the server needs the bus it is given to use the same store');
  }
  return sequence;
}

function prefix(count: number, index: number): string {
  return count > 1 ? `event ${index}: ` : '';
}

/** Runs a check of event `index`, naming the event in the error when there are several. */
function labelled<T>(count: number, index: number, check: () => T): T {
  try {
    return check();
  } catch (error) {
    throw relabel(count, index, error);
  }
}

async function labelledAsync<T>(count: number, index: number, check: () => T | Promise<T>): Promise<T> {
  try {
    return await check();
  } catch (error) {
    throw relabel(count, index, error);
  }
}

function relabel(count: number, index: number, error: unknown): unknown {
  if (count === 1 || !(error instanceof BusbarError)) return error;
  return new BusbarError(error.code, `${prefix(count, index)}${error.message}`, { cause: error, details: { ...error.details, index } });
}
