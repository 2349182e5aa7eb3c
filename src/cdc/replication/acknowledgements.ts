import type { Lsn } from './lsn.ts';

/** One delivery handed to the sink and not yet settled. */
export interface PendingDelivery {
  readonly changes: number;
  /** Set on a transaction's final chunk; undefined for a chunk of a long transaction. */
  readonly endLsn: Lsn | undefined;
  /** Commit time in Unix milliseconds. */
  readonly commitMs: number;
  done: boolean;
}

/**
 * Deliveries in flight, oldest first. The confirmed position advances only
 * over a prefix of settled deliveries, so a fast transaction behind a slow
 * one never confirms past it.
 *
 * @example
 * ```ts
 * const pending = acknowledgements.add(3, endLsn, commitMs);
 * await sink.deliver(transaction);
 * acknowledgements.settle(pending); // acknowledgements.confirmed === endLsn if it was the oldest
 * ```
 */
export class Acknowledgements {
  private readonly queue: PendingDelivery[] = [];
  private head = 0;
  /** Changes handed on and not yet settled. */
  inFlightChanges = 0;
  /** The end of the last transaction durably handled: safe to confirm. */
  confirmed: Lsn;

  constructor(confirmed: Lsn) {
    this.confirmed = confirmed;
  }

  get empty(): boolean {
    return this.head === this.queue.length;
  }

  add(changes: number, endLsn: Lsn | undefined, commitMs: number): PendingDelivery {
    const pending: PendingDelivery = { changes, endLsn, commitMs, done: false };
    this.queue.push(pending);
    this.inFlightChanges += changes;
    return pending;
  }

  /** Marks `pending` handled; returns true when the confirmed position moved. */
  settle(pending: PendingDelivery): boolean {
    pending.done = true;
    const before = this.confirmed;
    while (this.head < this.queue.length && this.queue[this.head]!.done) {
      const first = this.queue[this.head++]!;
      this.inFlightChanges -= first.changes;
      if (first.endLsn !== undefined && first.endLsn > this.confirmed) this.confirmed = first.endLsn;
    }
    // Compact now and then instead of shifting on every settle.
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    return this.confirmed !== before;
  }

  /** Confirms a position with nothing in flight before it (a keepalive's WAL end while idle). */
  confirmIdle(lsn: Lsn): boolean {
    if (!this.empty || lsn <= this.confirmed) return false;
    this.confirmed = lsn;
    return true;
  }

  /** Commit time of the oldest unsettled delivery, or undefined when none is in flight. */
  oldestCommitMs(): number | undefined {
    return this.empty ? undefined : this.queue[this.head]!.commitMs;
  }
}
