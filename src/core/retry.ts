import { BusbarError } from './errors.ts';

/** How a failing handler is retried before its event is dead-lettered. */
export interface RetryOptions {
  /** Total attempts including the first; 1 means no retry. Default 3. */
  attempts?: number;
  /** Delay before the first retry, ms. Default 100. */
  initialDelay?: number;
  /** Upper bound of any delay, ms. Default 30 000. */
  maxDelay?: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /** "Full jitter": a random delay between 0 and the computed one, so retries do not stampede. Default true. */
  jitter?: boolean;
}

export type RetryPolicy = Required<RetryOptions>;

export const defaultRetry: RetryPolicy = {
  attempts: 3,
  initialDelay: 100,
  maxDelay: 30_000,
  factor: 2,
  jitter: true,
};

export function retryPolicy(options: RetryOptions | undefined): RetryPolicy {
  const policy = { ...defaultRetry, ...options };
  if (!Number.isSafeInteger(policy.attempts) || policy.attempts < 1)
    throw badRetry('attempts', 'an integer ≥ 1');
  for (const name of ['initialDelay', 'maxDelay'] as const) {
    if (typeof policy[name] !== 'number' || !(policy[name] >= 0))
      throw badRetry(name, 'a number of ms ≥ 0');
  }
  if (typeof policy.factor !== 'number' || !(policy.factor >= 1))
    throw badRetry('factor', 'a number ≥ 1');
  return policy;
}

/** The wait before attempt `nextAttempt` (2 for the first retry). */
export function backoffDelay(policy: RetryPolicy, nextAttempt: number): number {
  const ceiling = Math.min(
    policy.maxDelay,
    policy.initialDelay * policy.factor ** (nextAttempt - 2),
  );
  return policy.jitter ? Math.random() * ceiling : ceiling;
}

function badRetry(name: string, expected: string): BusbarError {
  return new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', `retry.${name} must be ${expected}`, {
    details: { option: `retry.${name}` },
  });
}
