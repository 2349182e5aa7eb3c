import type { BusbarEvent } from '../../core/event.ts';
import type { LoggedEvent, Recipients, StoredDeadLetter } from '../../core/event-log.ts';
import { decodeEvent, encodeEvent } from '../codec.ts';
import type { SchemaNames } from './schema.ts';

/**
 * The columns of a logged event, as text or float8 so that a pool with custom
 * type parsers (int8 as BigInt, say) reads the same values.
 */
export const EVENT_COLUMNS = `e.position::text AS position, e.type, e.event, e.stream,
  e.stream_version::text AS stream_version, e.recipients::text AS recipients,
  (extract(epoch FROM e.recorded_at) * 1000)::float8 AS recorded_at`;

/**
 * The events readers may see: all rows except those past their stream's
 * `maxAge`, which stay hidden until retention deletes them.
 */
export function visibleEvents(names: SchemaNames): { from: string; where: string } {
  return {
    from: `${names.events} e LEFT JOIN ${names.streams} s ON s.stream = e.stream`,
    where: `(s.metadata->>'maxAge' IS NULL
      OR e.recorded_at >= now() - make_interval(secs => (s.metadata->>'maxAge')::float8))`,
  };
}

export interface EventRow {
  position: string;
  type: string;
  event: string;
  stream: string | null;
  stream_version: string | null;
  recipients: string | null;
  recorded_at: number | string;
}

export function recipientsOf(row: EventRow): Recipients | undefined {
  return row.recipients === null ? undefined : (JSON.parse(row.recipients) as Recipients);
}

export function toLoggedEvent(row: EventRow): LoggedEvent {
  const position = Number(row.position);
  return {
    position,
    event: decodeEvent(row.event, position),
    stream: row.stream ?? undefined,
    streamVersion: row.stream_version === null ? undefined : Number(row.stream_version),
    recipients: recipientsOf(row),
    recordedAt: Number(row.recorded_at),
  };
}

export interface DeadLetterRow {
  id: string;
  subscription: string;
  position: string;
  event: string;
  sequence: string | null;
  error: string;
  attempts: number;
  failed_at: string;
}

export const DEAD_LETTER_COLUMNS = `id, subscription, position::text AS position, event,
  sequence::text AS sequence, error::text AS error, attempts, failed_at`;

/** The values for `INSERT INTO dead_letters (id, subscription, position, event, sequence, error, attempts, failed_at)`. */
export function deadLetterValues(letter: StoredDeadLetter): unknown[] {
  return [
    letter.id,
    letter.subscription,
    letter.position,
    encodeEvent(letter.event),
    letter.event.sequence ?? null,
    JSON.stringify(letter.error),
    letter.attempts,
    letter.failedAt,
  ];
}

export function toDeadLetter(row: DeadLetterRow): StoredDeadLetter {
  return {
    id: row.id,
    subscription: row.subscription,
    position: Number(row.position),
    event: decodeLetterEvent(row.event, row.sequence),
    error: JSON.parse(row.error) as StoredDeadLetter['error'],
    attempts: row.attempts,
    failedAt: row.failed_at,
  };
}

/** `encodeEvent` keeps `sequence` out of the JSON; a dead letter's event may not have had one. */
function decodeLetterEvent(json: string, sequence: string | null): BusbarEvent {
  if (sequence !== null) return decodeEvent(json, Number(sequence));
  const { sequence: _none, ...event } = decodeEvent(json, 0);
  return Object.freeze(event) as BusbarEvent;
}
