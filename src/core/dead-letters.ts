import type { BusbarEvent } from './event.ts';
import { createEventId } from './event-id.ts';

/** An event a subscription gave up on after its last attempt. */
export interface DeadLetter {
  /** The dead letter's own id (not the event's). */
  readonly id: string;
  readonly subscription: string;
  readonly event: BusbarEvent;
  readonly error: Error;
  readonly attempts: number;
  /** RFC 3339. */
  readonly failedAt: string;
}

export interface DeadLetterFilter {
  subscription?: string;
  /** Dead letter ids. */
  ids?: readonly string[];
  limit?: number;
}

/** The in-memory dead-letter list, bounded: past `limit` the oldest are evicted and counted. */
export class DeadLetterList {
  private readonly letters = new Map<string, DeadLetter>();
  private readonly limit: number;
  evicted = 0;

  constructor(limit: number) {
    this.limit = limit;
  }

  add(subscription: string, event: BusbarEvent, error: Error, attempts: number): DeadLetter {
    const letter: DeadLetter = {
      id: createEventId(),
      subscription,
      event,
      error,
      attempts,
      failedAt: new Date().toISOString(),
    };
    this.letters.set(letter.id, letter);
    if (this.letters.size > this.limit) {
      const oldest = this.letters.keys().next().value!;
      this.letters.delete(oldest);
      this.evicted++;
    }
    return letter;
  }

  list(filter: DeadLetterFilter = {}): DeadLetter[] {
    const ids = filter.ids === undefined ? undefined : new Set(filter.ids);
    const found: DeadLetter[] = [];
    for (const letter of this.letters.values()) {
      if (filter.subscription !== undefined && letter.subscription !== filter.subscription)
        continue;
      if (ids !== undefined && !ids.has(letter.id)) continue;
      found.push(letter);
      if (filter.limit !== undefined && found.length >= filter.limit) break;
    }
    return found;
  }

  remove(id: string): boolean {
    return this.letters.delete(id);
  }

  /** Puts back a letter taken off for a redrive that failed. */
  restore(letter: DeadLetter): void {
    this.letters.set(letter.id, letter);
  }

  get size(): number {
    return this.letters.size;
  }
}

/** The data of a `busbar.dead_letter` event. */
export interface DeadLetterNotice {
  deadLetterId: string;
  subscription: string;
  eventId: string;
  eventType: string;
  attempts: number;
  error: { name: string; message: string; code?: string };
}

export function noticeOf(letter: DeadLetter): DeadLetterNotice {
  const code = (letter.error as { code?: unknown }).code;
  return {
    deadLetterId: letter.id,
    subscription: letter.subscription,
    eventId: letter.event.id,
    eventType: letter.event.type,
    attempts: letter.attempts,
    error: {
      name: letter.error.name,
      message: letter.error.message,
      ...(typeof code === 'string' ? { code } : {}),
    },
  };
}
