/** How retries and reconnects wait: exponential growth with jitter, capped. */
export interface BackoffOptions {
  /** The first wait, ms. */
  readonly initialDelayMs: number;
  /** No wait is longer, ms. */
  readonly maxDelayMs: number;
}

/**
 * The wait before retry number `attempt` (0 for the first): "equal jitter",
 * a random point in the upper half of `initialDelayMs · 2^attempt` (capped),
 * so clients cut off together by a restart do not all return in the same
 * millisecond, yet none retries at once.
 *
 * @example
 * ```ts
 * backoffDelay(0, { initialDelayMs: 100, maxDelayMs: 10_000 }) // 50…100
 * backoffDelay(10, { initialDelayMs: 100, maxDelayMs: 10_000 }) // 5000…10000
 * ```
 */
export function backoffDelay(attempt: number, { initialDelayMs, maxDelayMs }: BackoffOptions): number {
  const ceiling = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(attempt, 30));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/**
 * Resolves after `ms`, or at once when `signal` aborts (it never rejects: the
 * caller checks the signal).
 *
 * @example
 * ```ts
 * await pause(250, controller.signal);
 * ```
 */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
