import assert from 'node:assert/strict';
import { BusbarError, ConcurrencyError, type ErrorCode } from '../../core/errors.ts';

/** Runs `work` and returns the BusbarError it fails with; fails the test on success or any other error. */
export async function rejectsWith(
  work: () => Promise<unknown>,
  code: ErrorCode,
  what = 'the call',
): Promise<BusbarError> {
  let thrown: unknown;
  try {
    await work();
  } catch (error) {
    thrown = error;
  }
  assert.ok(thrown !== undefined, `${what} should fail with ${code}, but succeeded`);
  assert.ok(thrown instanceof BusbarError, `${what} should fail with ${code}, got ${String(thrown)}`);
  assert.equal(thrown.code, code, `${what}: ${thrown.message}`);
  return thrown;
}

export function assertConcurrencyError(error: unknown, stream: string, expected: unknown, actual: number): void {
  assert.ok(error instanceof ConcurrencyError, `expected a ConcurrencyError, got ${String(error)}`);
  assert.equal(error.code, 'BUSBAR_ERR_CONCURRENCY');
  assert.equal(error.status, 409);
  assert.equal(error.stream, stream);
  assert.equal(error.expected, expected);
  assert.equal(error.actual, actual);
}

/** Whether `promise` settles, either way, within `ms`. */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(resolve, ms, false);
  });
  try {
    return await Promise.race([promise.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
