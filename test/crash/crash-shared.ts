/** What the crash test and the publisher it kills agree on. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Concurrent publishing tasks in the child. */
export const TASKS = 16;
/** Publishes per task before the child stops (a bound; it is killed long before). */
export const PER_TASK = 5_000;
export const TOPIC = 'crash.tick';

/**
 * The durable subscriptions, the same in the child and after the restart.
 * Every `slowEvery`-th position takes `slowMs` to handle, the others one turn
 * of the event loop.
 */
export const SUBSCRIPTIONS = [
  // One at a time: handled in log order.
  { name: 'indexer', concurrency: 1, slowEvery: 8, slowMs: 1 },
  // Four at once, the slow ones overtaken by the next ones for several
  // commits: the checkpoint has to stay behind them (a low-water mark).
  { name: 'mailer', concurrency: 4, slowEvery: 8, slowMs: 8 },
] as const;

export type SubscriptionName = (typeof SUBSCRIPTIONS)[number]['name'];

/** A little async work for the event at `position`. */
export function handlerWork(subscription: (typeof SUBSCRIPTIONS)[number], position: number): Promise<void> {
  return new Promise((resolve) => {
    if (position % subscription.slowEvery === 0) setTimeout(resolve, subscription.slowMs);
    else setImmediate(resolve);
  });
}

/** Where a run of the child records what `subscription` handled. */
export function handledFile(directory: string, subscription: string, run: string): string {
  return join(directory, `${subscription}.${run}.handled`);
}

/** Where each subscription's checkpoint stood when a run of the child started (0: none yet). */
export type Checkpoints = Record<SubscriptionName, number>;

function startFile(directory: string, run: string): string {
  return join(directory, `start.${run}.json`);
}

/** The child records the checkpoints it resumes from, before it subscribes. */
export function writeStart(directory: string, run: string, checkpoints: Checkpoints): void {
  writeFileSync(startFile(directory, run), JSON.stringify(checkpoints));
}

export function readStart(directory: string, run: string): Checkpoints {
  return JSON.parse(readFileSync(startFile(directory, run), 'utf8')) as Checkpoints;
}

/** An event id and the position it was reported with. */
export interface Seen {
  id: string;
  position: number;
}

/** The complete `<id> <position>` lines of `text`; a last line without its newline is ignored. */
export function parseLines(text: string): Seen[] {
  const lines = text.split('\n');
  lines.pop(); // '' after the last newline, or an incomplete line
  return lines.map((line) => {
    const [id, position] = line.split(' ');
    if (id === undefined || position === undefined || !/^\d+$/.test(position)) {
      throw new Error(`malformed line ${JSON.stringify(line)}`);
    }
    return { id, position: Number(position) };
  });
}

/** What a run of the child recorded as handled by `subscription`, in the order it was handled. */
export function readHandled(directory: string, subscription: string, run: string): Seen[] {
  const file = handledFile(directory, subscription, run);
  return existsSync(file) ? parseLines(readFileSync(file, 'utf8')) : [];
}
