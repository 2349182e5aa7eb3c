interface Waiter {
  after: number;
  resolve: () => void;
}

/**
 * Readers parked at the head of the log, woken when a commit moves the head
 * past where they wait. This is the in-process half of the live tail; the
 * PostgreSQL store also wakes it from LISTEN/NOTIFY for other writers.
 */
export class TailWaiters {
  private readonly waiters = new Set<Waiter>();

  wait(after: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter: Waiter = {
        after,
        resolve: () => {
          this.waiters.delete(waiter);
          signal?.removeEventListener('abort', waiter.resolve);
          resolve();
        },
      };
      this.waiters.add(waiter);
      signal?.addEventListener('abort', waiter.resolve, { once: true });
    });
  }

  /** Wakes the readers waiting below `head`. */
  wake(head: number): void {
    for (const waiter of this.waiters) if (head > waiter.after) waiter.resolve();
  }

  wakeAll(): void {
    for (const waiter of this.waiters) waiter.resolve();
  }
}
