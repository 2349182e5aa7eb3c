import { toCloudEvent } from '../core/cloudevents.ts';
import type { BusbarEvent } from '../core/event.ts';

/**
 * The stored form of an event: CloudEvents structured JSON without
 * `sequence`, which the store keeps as the row's position instead.
 */
export function encodeEvent(event: BusbarEvent): string {
  if (event.sequence === undefined) return JSON.stringify(toCloudEvent(event));
  const { sequence: _position, ...rest } = event;
  return JSON.stringify(toCloudEvent(rest as BusbarEvent));
}

/**
 * Decodes what `encodeEvent` wrote, stamping the position as `sequence`. It
 * trusts the row (the store wrote it after validation), so reading stays a
 * `JSON.parse` and not a second validation.
 */
export function decodeEvent(json: string, position: number): BusbarEvent {
  const raw = JSON.parse(json) as Record<string, unknown>;
  raw.sequence = position;
  if (typeof raw.data_base64 === 'string') {
    raw.data = new Uint8Array(Buffer.from(raw.data_base64, 'base64'));
    delete raw.data_base64;
  }
  return Object.freeze(raw) as unknown as BusbarEvent;
}
