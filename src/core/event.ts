import { BusbarError } from './errors.ts';
import { createEventId } from './event-id.ts';
import { assertTopic } from './topic.ts';

/**
 * A published event: a CloudEvents 1.0 event whose `type` is the topic.
 * Events are frozen once published.
 */
export interface BusbarEvent<Data = unknown, Type extends string = string> {
  readonly specversion: '1.0';
  /** Unique and time-ordered (UUIDv7) unless the publisher gave one; the dedup key. */
  readonly id: string;
  /** The topic: dot-separated `[A-Za-z0-9_-]+` tokens. */
  readonly type: Type;
  readonly source: string;
  /** When it occurred, RFC 3339. */
  readonly time: string;
  readonly subject?: string;
  readonly datacontenttype?: string;
  readonly dataschema?: string;
  readonly data: Data;
  /** Ordering key: events with the same key are handled one at a time, in order. */
  readonly partitionkey?: string;
  readonly traceparent?: string;
  readonly transactionid?: string;
  /** After this instant (RFC 3339) the event is not delivered and counts as expired. */
  readonly expirytime?: string;
  /** Higher is sooner in subscriptions ordered by priority. */
  readonly priority?: number;
  /** Position in the durable log, assigned by the store. */
  readonly sequence?: number;
  readonly [extension: string]: unknown;
}

/** What a publisher may say about an event besides its topic and data. */
export interface EventOptions {
  id?: string;
  source?: string;
  subject?: string;
  time?: string | Date;
  /** The ordering key (CloudEvents `partitionkey`). */
  key?: string;
  traceparent?: string;
  transactionid?: string;
  /** Time to live in milliseconds; sets `expirytime`. */
  ttl?: number;
  expirytime?: string | Date;
  priority?: number;
  datacontenttype?: string;
  dataschema?: string;
  /** Further CloudEvents extension attributes (lower-case alphanumeric names). */
  extensions?: Record<string, string | number | boolean>;
}

export const CORE_ATTRIBUTES: ReadonlySet<string> = new Set([
  'specversion',
  'id',
  'type',
  'source',
  'time',
  'subject',
  'datacontenttype',
  'dataschema',
  'data',
  'data_base64',
]);

/** Extensions with their own publish option (or, for `sequence`, set by the store). */
const MANAGED_EXTENSIONS: ReadonlyMap<string, string> = new Map([
  ['partitionkey', '"key"'],
  ['traceparent', '"traceparent"'],
  ['transactionid', '"transactionid"'],
  ['expirytime', '"ttl" or "expirytime"'],
  ['priority', '"priority"'],
  ['sequence', '(none: the log assigns it)'],
]);

const EXTENSION_NAME = /^[a-z0-9]{1,20}$/;

// Formatting a Date is the costliest part of stamping an event; events
// published within the same millisecond share one string.
let stampMs = -1;
let stamp = '';

/** The time `now` (epoch ms, default the current time) as RFC 3339, cached per millisecond. */
export function nowRfc3339(now: number = Date.now()): string {
  if (now !== stampMs) {
    stampMs = now;
    stamp = new Date(now).toISOString();
  }
  return stamp;
}

/** Builds and freezes an event; the topic must already be valid. */
export function buildEvent(
  type: string,
  data: unknown,
  options: EventOptions | undefined,
  defaultSource: string,
): BusbarEvent {
  // One clock read serves the id and the time: on some virtual machines a
  // read costs as much as the rest of a publish.
  const now = Date.now();
  if (options === undefined) {
    return Object.freeze({
      specversion: '1.0',
      id: createEventId(now),
      type,
      source: defaultSource,
      time: nowRfc3339(now),
      data,
    });
  }
  const event: Record<string, unknown> = {
    specversion: '1.0',
    id: options.id === undefined ? createEventId(now) : nonEmpty('id', options.id),
    type,
    source: options.source === undefined ? defaultSource : nonEmpty('source', options.source),
    time: options.time === undefined ? nowRfc3339(now) : rfc3339('time', options.time),
  };
  if (options.subject !== undefined) event.subject = nonEmpty('subject', options.subject);
  if (options.datacontenttype !== undefined)
    event.datacontenttype = nonEmpty('datacontenttype', options.datacontenttype);
  if (options.dataschema !== undefined)
    event.dataschema = nonEmpty('dataschema', options.dataschema);
  event.data = data;
  if (options.key !== undefined) event.partitionkey = nonEmpty('key', options.key);
  if (options.traceparent !== undefined)
    event.traceparent = nonEmpty('traceparent', options.traceparent);
  if (options.transactionid !== undefined)
    event.transactionid = nonEmpty('transactionid', options.transactionid);
  if (options.ttl !== undefined) {
    if (typeof options.ttl !== 'number' || !(options.ttl >= 0) || !Number.isFinite(options.ttl)) {
      throw invalidOption('ttl', 'a finite number of milliseconds ≥ 0', options.ttl);
    }
    event.expirytime = new Date(now + options.ttl).toISOString();
  } else if (options.expirytime !== undefined) {
    event.expirytime = rfc3339('expirytime', options.expirytime);
  }
  if (options.priority !== undefined) {
    if (!Number.isSafeInteger(options.priority))
      throw invalidOption('priority', 'an integer', options.priority);
    event.priority = options.priority;
  }
  if (options.extensions !== undefined) {
    for (const name of Object.keys(options.extensions)) {
      if (MANAGED_EXTENSIONS.has(name)) {
        throw new BusbarError(
          'BUSBAR_ERR_INVALID_ARGUMENT',
          `extension "${name}" is set by Busbar: use the publish option ${MANAGED_EXTENSIONS.get(name)} instead`,
          { details: { attribute: name } },
        );
      }
    }
    addExtensions(event, options.extensions);
  }
  return Object.freeze(event) as unknown as BusbarEvent;
}

/** Copies extension attributes after checking their names and value types. */
export function addExtensions(
  event: Record<string, unknown>,
  extensions: Record<string, unknown>,
): void {
  for (const name of Object.keys(extensions)) {
    if (!EXTENSION_NAME.test(name) || CORE_ATTRIBUTES.has(name)) {
      throw new BusbarError(
        'BUSBAR_ERR_INVALID_EVENT',
        `invalid extension attribute name "${name}": use 1-20 lower-case letters or digits, not a core attribute`,
        { details: { attribute: name } },
      );
    }
    const value = extensions[name];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      throw new BusbarError(
        'BUSBAR_ERR_INVALID_EVENT',
        `extension attribute "${name}" must be a string, number or boolean, got ${typeof value}`,
        { details: { attribute: name } },
      );
    }
    event[name] = value;
  }
}

/** The instant after which an event expires, in epoch milliseconds, or 0 for never. */
export function expiryOf(event: BusbarEvent): number {
  return event.expirytime === undefined ? 0 : Date.parse(event.expirytime);
}

function nonEmpty(name: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0)
    throw invalidOption(name, 'a non-empty string', value);
  return value;
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-](\d{2}):(\d{2}))$/;

/** Accepts a Date or an RFC 3339 string; returns the RFC 3339 string. */
export function rfc3339(name: string, value: unknown): string {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw invalidOption(name, 'a valid Date', value);
    return value.toISOString();
  }
  if (typeof value === 'string' && value === lastValidTime) return value;
  if (typeof value !== 'string' || !isRfc3339(value)) throw invalidOption(name, 'an RFC 3339 timestamp', value);
  lastValidTime = value;
  return value;
}

// The events of one batch or transaction usually share their time: checked once.
let lastValidTime: string | undefined;

function isRfc3339(value: string): boolean {
  const match = RFC3339.exec(value);
  if (match === null) return false;
  // Date.parse rolls 2024-02-30 over to March 1st, so each field is checked.
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as number[];
  const daysInMonth = new Date(Date.UTC(year!, month!, 0)).getUTCDate();
  if (month! < 1 || month! > 12 || day! < 1 || day! > daysInMonth) return false;
  if (hour! > 23 || minute! > 59 || second! > 60) return false; // 60: a leap second
  if (match[9] !== undefined && (Number(match[9]) > 23 || Number(match[10]) > 59)) return false;
  return true;
}

function invalidOption(name: string, expected: string, value: unknown): BusbarError {
  return new BusbarError(
    'BUSBAR_ERR_INVALID_ARGUMENT',
    `option "${name}" must be ${expected}, got ${typeof value === 'string' ? JSON.stringify(value) : typeof value}`,
    { details: { option: name } },
  );
}

/**
 * Builds an event without publishing it: for appending to a store directly
 * (`store.append`, `appendToStream`) or sending it elsewhere. The topic is
 * checked; the source defaults to `busbar`.
 *
 * @example
 * ```ts
 * const event = createEvent('account.opened', { owner: 'Ada' }, { subject: 'account-1' });
 * await store.appendToStream('account-1', [event], { expectedVersion: 'no_stream' });
 * ```
 */
export function createEvent<Data>(type: string, data: Data, options?: EventOptions): BusbarEvent<Data> {
  assertTopic(type);
  const event = buildEvent(type, data, options, 'busbar');
  wellFormedEvents.add(event);
  return event as BusbarEvent<Data>;
}

/**
 * Events known to be valid CloudEvents (made by `createEvent` or
 * `parseCloudEvent`, frozen since): publishing one skips parsing it again.
 */
export const wellFormedEvents = new WeakSet<object>();
