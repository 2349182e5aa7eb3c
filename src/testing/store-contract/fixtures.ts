import { type BusbarEvent, buildEvent, type EventOptions } from '../../core/event.ts';
import type { LoggedEvent, StoredDeadLetter } from '../../core/event-log.ts';
import type { EventStore, ReadStreamOptions } from '../../store/event-store.ts';

let made = 0;

/** A new event whose payload no other event in the run has. */
export function event(
  topic = 'orders.created',
  options?: EventOptions,
  data: unknown = { n: ++made },
): BusbarEvent {
  return buildEvent(topic, data, options, 'busbar-contract');
}

export function events(count: number, topic?: string): BusbarEvent[] {
  return Array.from({ length: count }, () => event(topic));
}

/** The event as a store hands it back: stamped with its position. */
export function stored(original: BusbarEvent, position: number): BusbarEvent {
  return { ...original, sequence: position };
}

export function deadLetter(id: string, failed: BusbarEvent, position: number, code?: string): StoredDeadLetter {
  return {
    id,
    subscription: 'mailer',
    position,
    event: stored(failed, position),
    error:
      code === undefined
        ? { name: 'Error', message: 'smtp down' }
        : { name: 'BusbarError', message: 'timed out', code },
    attempts: 3,
    failedAt: '2025-01-02T03:04:05.678Z',
  };
}

/**
 * Two streams written in turns, so versions and positions differ: positions
 * 1-7 hold account-1 v1, account-2 v1, account-1 v2 and v3, account-2 v2,
 * account-1 v4 and v5.
 */
export async function twoStreams<T>(store: EventStore<T>): Promise<{ first: BusbarEvent[]; second: BusbarEvent[] }> {
  const first = events(5, 'accounts.credited');
  const second = events(2, 'accounts.debited');
  await store.appendToStream('account-1', first.slice(0, 1));
  await store.appendToStream('account-2', second.slice(0, 1));
  await store.appendToStream('account-1', first.slice(1, 3));
  await store.appendToStream('account-2', second.slice(1, 2));
  await store.appendToStream('account-1', first.slice(3, 5));
  return { first, second };
}

export const idsOf = (rows: readonly LoggedEvent[]): string[] => rows.map((row) => row.event.id);
export const positionsOf = (rows: readonly LoggedEvent[]): number[] => rows.map((row) => row.position);
export const versionsOf = (rows: readonly LoggedEvent[]): unknown[] => rows.map((row) => row.streamVersion);
export const byId = (a: { id: string }, b: { id: string }): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

export async function versionsIn<T>(
  store: EventStore<T>,
  stream: string,
  options?: ReadStreamOptions,
): Promise<unknown[]> {
  return versionsOf(await store.readStream(stream, options));
}

/** The integers `from` to `to`, inclusive. */
export function span(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
