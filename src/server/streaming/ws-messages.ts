import { BusbarError } from '../../core/errors.ts';
import type { Accepted } from '../context.ts';

const MAX_ID_LENGTH = 128;

/** A message a WebSocket client sends, checked (see `docs/protocol.md`). */
export type ClientMessage =
  | { op: 'subscribe'; id: string; topics: unknown; subject: unknown; from: unknown }
  | { op: 'unsubscribe'; id: string }
  | { op: 'publish'; ref: string | undefined; events: unknown[] }
  | { op: 'ping'; ref: string | undefined };

/** The `ref` and `id` of a message, when they are strings, so an error about it can name them. */
export interface MessageNames {
  ref?: string;
  id?: string;
}

/**
 * Parses one text frame into a client message. Throws
 * `BUSBAR_ERR_INVALID_JSON` for malformed JSON and
 * `BUSBAR_ERR_INVALID_ARGUMENT` for a well-formed message that is not one
 * of the protocol's; `names` receives the message's `ref`/`id` either way.
 *
 * @example
 * ```ts
 * readClientMessage('{"op":"ping"}', {}) // { op: 'ping', ref: undefined }
 * ```
 */
export function readClientMessage(text: string, names: MessageNames): ClientMessage {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new BusbarError('BUSBAR_ERR_INVALID_JSON', `malformed JSON: ${(error as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid('a message must be a JSON object with an "op"');
  }
  const message = value as Record<string, unknown>;
  if (typeof message.ref === 'string') names.ref = message.ref;
  if (typeof message.id === 'string') names.id = message.id;
  const ref = optionalName('ref', message.ref);
  switch (message.op) {
    case 'subscribe':
      return {
        op: 'subscribe',
        id: requiredName('id', message.id),
        topics: typeof message.topics === 'string' ? [message.topics] : message.topics,
        subject: message.subject,
        from: message.from,
      };
    case 'unsubscribe':
      return { op: 'unsubscribe', id: requiredName('id', message.id) };
    case 'publish': {
      if ((message.event === undefined) === (message.events === undefined)) {
        throw invalid('publish takes either "event" (one event) or "events" (a batch)');
      }
      const events = message.events ?? [message.event];
      if (!Array.isArray(events) || events.length === 0) throw invalid('"events" must be a non-empty array');
      return { op: 'publish', ref, events };
    }
    case 'ping':
      return { op: 'ping', ref };
    default:
      throw invalid(
        `unknown op ${JSON.stringify(message.op)}: expected "subscribe", "unsubscribe", "publish" or "ping"`,
      );
  }
}

/** `subscribed`: the subscription is live; its events are those after `position`. */
export function subscribedFrame(id: string, position: number): string {
  return `{"op":"subscribed","id":${JSON.stringify(id)},"position":${position}}`;
}

export function unsubscribedFrame(id: string): string {
  return `{"op":"unsubscribed","id":${JSON.stringify(id)}}`;
}

/** `ack`: the published events are committed, with their ids and positions in order. */
export function ackFrame(ref: string | undefined, accepted: readonly Accepted[]): string {
  return JSON.stringify({ op: 'ack', ref, events: accepted.map(({ id, position }) => ({ id, position })) });
}

export function pongFrame(ref: string | undefined): string {
  return ref === undefined ? '{"op":"pong"}' : JSON.stringify({ op: 'pong', ref });
}

/** `error`: a message failed; the connection stays open. */
export function errorFrame(error: BusbarError, names: MessageNames): string {
  return JSON.stringify({ op: 'error', ref: names.ref, id: names.id, error: error.toJSON() });
}

function requiredName(field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_ID_LENGTH) {
    throw invalid(`"${field}" must be a string of 1-${MAX_ID_LENGTH} characters`);
  }
  return value;
}

function optionalName(field: string, value: unknown): string | undefined {
  return value === undefined ? undefined : requiredName(field, value);
}

function invalid(message: string): BusbarError {
  return new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', message);
}
