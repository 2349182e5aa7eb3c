import { BusbarError } from '../../core/errors.ts';
import type { EventLog } from '../../core/event-log.ts';

/**
 * Where a subscription starts: at the end of the log (only new events), or
 * after a position (0 = from the beginning).
 */
export type StartPosition = 'end' | { readonly after: number };

const DIGITS = /^\d{1,16}$/;

/**
 * The start of an SSE stream. A `Last-Event-ID` (the header a reconnecting
 * EventSource sends, else the `lastEventId` query parameter) resumes after
 * that position and wins over `from`, since a reconnecting browser keeps the
 * original URL; `from` is `end` (default), `beginning` or a position to start
 * at (inclusive).
 *
 * @example
 * ```ts
 * sseStart(undefined, undefined, '42') // { after: 41 }
 * sseStart('41', undefined, 'beginning') // { after: 41 }
 * ```
 */
export function sseStart(header: unknown, queryLastEventId: unknown, from: unknown): StartPosition {
  const lastEventId = header ?? queryLastEventId;
  if (lastEventId !== undefined) return { after: position('Last-Event-ID', lastEventId) };
  if (from === undefined || from === 'end') return 'end';
  if (from === 'beginning') return { after: 0 };
  if (typeof from === 'string' && DIGITS.test(from)) return { after: Math.max(position('from', from) - 1, 0) };
  throw new BusbarError(
    'BUSBAR_ERR_INVALID_ARGUMENT',
    `from must be "beginning", "end" or a log position, got ${JSON.stringify(from)}`,
  );
}

/**
 * The start of a WebSocket subscription: `"end"` (default), `"beginning"`, a
 * position to start at (inclusive), or `{ "after": position }` to resume
 * after the last event received.
 *
 * @example
 * ```ts
 * wsStart({ after: 41 }) // { after: 41 }
 * wsStart(42) // { after: 41 }
 * ```
 */
export function wsStart(from: unknown): StartPosition {
  if (from === undefined || from === 'end') return 'end';
  if (from === 'beginning') return { after: 0 };
  if (isPosition(from)) return { after: Math.max(from - 1, 0) };
  if (typeof from === 'object' && from !== null && !Array.isArray(from)) {
    const keys = Object.keys(from);
    const after = (from as { after?: unknown }).after;
    if (keys.length === 1 && isPosition(after)) return { after };
  }
  throw new BusbarError(
    'BUSBAR_ERR_INVALID_ARGUMENT',
    `from must be "end", "beginning", a log position or {"after": position}, got ${JSON.stringify(from)}`,
  );
}

/**
 * Rejects a start past the head of the log: such a position was never handed
 * out by this log (it was reset, or the client is confused), and waiting for
 * the log to grow past it would silently drop everything until then.
 */
export async function checkStart(start: StartPosition, log: EventLog): Promise<void> {
  if (start === 'end' || start.after === 0) return;
  const head = await log.head();
  if (start.after > head) {
    throw new BusbarError(
      'BUSBAR_ERR_INVALID_ARGUMENT',
      `position ${start.after} is past the end of the log (its last position is ${head})`,
      { details: { position: start.after, head } },
    );
  }
}

function position(name: string, value: unknown): number {
  const number = typeof value === 'string' && DIGITS.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(number)) {
    throw new BusbarError(
      'BUSBAR_ERR_INVALID_ARGUMENT',
      `${name} must be a log position (an integer >= 0), got ${JSON.stringify(value)}`,
    );
  }
  return number;
}

function isPosition(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
