import { Deque } from './ordered-queue.ts';

interface Taken {
  position: number;
  recordedAt: number;
  done: boolean;
}

/**
 * Where a durable subscription may resume. Events are handed out in position
 * order but finish in any order (concurrency, retries, per-key lanes), so the
 * checkpoint is the low-water mark: the highest position at or below which
 * everything handed out is done. Positions the reader passed over (other
 * topics) count as done once nothing before them is pending.
 */
export class CheckpointTracker {
  private readonly taken = new Deque<Taken>();
  private readonly byPosition = new Map<number, Taken>();
  /** The highest position the reader has looked at. */
  private seen: number;
  /** Everything at or below this is done. */
  position: number;

  constructor(start: number) {
    this.seen = start;
    this.position = start;
  }

  /** The reader handed out the event at `position`. */
  take(position: number, recordedAt: number): void {
    const entry: Taken = { position, recordedAt, done: false };
    this.taken.push(entry);
    this.byPosition.set(position, entry);
    this.pass(position);
  }

  /** The reader has looked at everything up to `position`. */
  pass(position: number): void {
    if (position <= this.seen) return;
    this.seen = position;
    if (this.taken.size === 0) this.position = position;
  }

  /** The event at `position` is done with; false if it was not handed out by the reader. */
  done(position: number): boolean {
    const entry = this.byPosition.get(position);
    if (entry === undefined) return false;
    entry.done = true;
    this.byPosition.delete(position);
    while (this.taken.size > 0 && this.taken.peekOldest()!.done) this.position = this.taken.shift()!.position;
    if (this.taken.size === 0) this.position = this.seen;
    return true;
  }

  /** Commit time of the oldest event handed out and not yet done, if any. */
  get oldestPendingAt(): number | undefined {
    return this.taken.peekOldest()?.recordedAt;
  }
}
