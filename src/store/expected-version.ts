import { BusbarError, ConcurrencyError } from '../core/errors.ts';
import type { ExpectedVersion } from './event-store.ts';

/** Throws `BUSBAR_ERR_INVALID_ARGUMENT` unless `expected` is a valid expected version. */
export function assertExpectedVersion(expected: unknown): asserts expected is ExpectedVersion {
  if (expected === 'any' || expected === 'no_stream' || expected === 'exists') return;
  if (typeof expected === 'number' && Number.isSafeInteger(expected) && expected >= 0) return;
  throw new BusbarError(
    'BUSBAR_ERR_INVALID_ARGUMENT',
    `expectedVersion must be "any", "no_stream", "exists" or a version >= 0, got ${JSON.stringify(expected)}`,
  );
}

/** Throws `ConcurrencyError` unless a stream at `actual` satisfies `expected`. */
export function checkExpectedVersion(stream: string, expected: ExpectedVersion, actual: number): void {
  const ok =
    expected === 'any' ||
    (expected === 'no_stream' && actual === 0) ||
    (expected === 'exists' && actual > 0) ||
    expected === actual;
  if (!ok) throw new ConcurrencyError(stream, expected, actual);
}

/** Throws `BUSBAR_ERR_INVALID_ARGUMENT` unless `stream` is a usable stream id. */
export function assertStreamId(stream: unknown): asserts stream is string {
  if (typeof stream !== 'string' || stream.length === 0 || stream.length > 256) {
    throw new BusbarError(
      'BUSBAR_ERR_INVALID_ARGUMENT',
      `a stream id must be a string of 1-256 characters, got ${JSON.stringify(stream)}`,
    );
  }
}
