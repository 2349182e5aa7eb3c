import { BusbarError } from '../core/errors.ts';
import type { EventOptions } from '../core/event.ts';
import { createEventId } from '../core/event-id.ts';

/**
 * An event as the HTTP API takes it: the plain form `{ type, data, … }` with
 * any CloudEvents attribute by its CloudEvents name (`subject`,
 * `partitionkey`, `expirytime`, extensions…), or a structured CloudEvent
 * with `specversion`. Without an `id` the client makes one, so a retry is
 * stored once.
 */
export interface EventInput<Data = unknown, Type extends string = string> {
  readonly type: Type;
  readonly data?: Data;
  readonly id?: string;
  readonly source?: string;
  readonly subject?: string;
  readonly time?: string;
  readonly [attribute: string]: unknown;
}

/** What the wire carries: an input with its id settled and bytes as base64. */
export type WireEvent = Record<string, unknown> & { id: string };

/**
 * The plain-form event for `publish(type, data, options)`: the options by
 * their `bus.publish` names (`key`, `ttl`…) turned into CloudEvents
 * attributes, and an id made here unless one is given.
 *
 * @example
 * ```ts
 * eventFromOptions('order.created', { id: 'o-1' }, { key: 'o-1', ttl: 60_000 })
 * // { type: 'order.created', data: { id: 'o-1' }, id: '019…', partitionkey: 'o-1', expirytime: '…' }
 * ```
 */
export function eventFromOptions(type: string, data: unknown, options: EventOptions = {}): WireEvent {
  const event: Record<string, unknown> = { type, id: options.id ?? createEventId() };
  put(event, 'source', options.source);
  put(event, 'subject', options.subject);
  put(event, 'time', options.time instanceof Date ? options.time.toISOString() : options.time);
  put(event, 'datacontenttype', options.datacontenttype);
  put(event, 'dataschema', options.dataschema);
  put(event, 'partitionkey', options.key);
  put(event, 'traceparent', options.traceparent);
  put(event, 'transactionid', options.transactionid);
  put(event, 'priority', options.priority);
  if (options.ttl !== undefined) {
    if (typeof options.ttl !== 'number' || !Number.isFinite(options.ttl) || options.ttl < 0) {
      throw new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', `option "ttl" must be a finite number of milliseconds ≥ 0, got ${String(options.ttl)}`);
    }
    event.expirytime = new Date(Date.now() + options.ttl).toISOString();
  } else {
    put(event, 'expirytime', options.expirytime instanceof Date ? options.expirytime.toISOString() : options.expirytime);
  }
  if (options.extensions !== undefined) {
    for (const [name, value] of Object.entries(options.extensions)) if (!(name in event)) event[name] = value;
  }
  return withData(event, data) as WireEvent;
}

/**
 * An event given whole, ready for the wire: its id made here when missing,
 * its `sequence` dropped (the log assigns positions) and bytes as
 * `data_base64`.
 *
 * @example
 * ```ts
 * eventFromInput({ type: 'order.paid', data: { id: 'o-1' } }) // { type: 'order.paid', data: { id: 'o-1' }, id: '019…' }
 * ```
 */
export function eventFromInput(input: EventInput): WireEvent {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new BusbarError('BUSBAR_ERR_INVALID_EVENT', `an event must be an object with a "type", got ${input === null ? 'null' : typeof input}`);
  }
  const { data, sequence: _position, ...attributes } = input;
  const event: Record<string, unknown> = { ...attributes, id: input.id ?? createEventId() };
  return ('data' in input ? withData(event, data) : event) as WireEvent;
}

function put(event: Record<string, unknown>, name: string, value: unknown): void {
  if (value !== undefined) event[name] = value;
}

/** JSON has no bytes: a CloudEvent carries them base64-encoded in `data_base64`. */
function withData(event: Record<string, unknown>, data: unknown): Record<string, unknown> {
  if (data instanceof Uint8Array) event.data_base64 = base64(data);
  else if (data !== undefined) event.data = data;
  return event;
}

function base64(bytes: Uint8Array): string {
  let binary = '';
  // Chunks keep String.fromCharCode's argument list short for large payloads.
  for (let start = 0; start < bytes.length; start += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(start, start + 0x8000));
  }
  return btoa(binary);
}
