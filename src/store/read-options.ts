import { BusbarError } from '../core/errors.ts';
import type { ReadAllOptions } from '../core/event-log.ts';
import type { ReadStreamOptions, StreamMetadata } from './event-store.ts';

const DEFAULT_PAGE = 1000;

/** Throws `BUSBAR_ERR_INVALID_ARGUMENT` unless `value` is an integer >= 0. */
export function nonNegativeInteger(name: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new BusbarError(
      'BUSBAR_ERR_INVALID_ARGUMENT',
      `${name} must be an integer >= 0, got ${JSON.stringify(value)}`,
    );
  }
}

/** Checks `readAll` options and fills in the defaults. */
export function readAllOptions(options: ReadAllOptions = {}): { after: number; limit: number } {
  const after = options.after ?? 0;
  const limit = options.limit ?? DEFAULT_PAGE;
  nonNegativeInteger('after', after);
  nonNegativeInteger('limit', limit);
  return { after, limit };
}

/** Checks `readStream` options and fills in the defaults (`from` stays undefined for "the end"). */
export function readStreamOptions(options: ReadStreamOptions = {}): {
  backward: boolean;
  from: number | undefined;
  limit: number;
} {
  const direction = options.direction ?? 'forward';
  if (direction !== 'forward' && direction !== 'backward') {
    throw new BusbarError(
      'BUSBAR_ERR_INVALID_ARGUMENT',
      `direction must be "forward" or "backward", got ${JSON.stringify(direction)}`,
    );
  }
  if (options.from !== undefined) nonNegativeInteger('from', options.from);
  if (options.limit !== undefined) nonNegativeInteger('limit', options.limit);
  return {
    backward: direction === 'backward',
    from: options.from,
    limit: options.limit ?? Number.MAX_SAFE_INTEGER,
  };
}

/** Checks stream metadata, keeping only the known bounds. */
export function streamMetadata(metadata: StreamMetadata): StreamMetadata {
  if (typeof metadata !== 'object' || metadata === null) {
    throw new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', 'stream metadata must be an object');
  }
  const checked: StreamMetadata = {};
  for (const key of ['maxCount', 'maxAge', 'truncateBefore'] as const) {
    const value = metadata[key];
    if (value === undefined) continue;
    nonNegativeInteger(key, value);
    checked[key] = value;
  }
  return checked;
}

/** Checks a subscription or consumer name used as a checkpoint key. */
export function assertName(kind: string, name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 256) {
    throw new BusbarError(
      'BUSBAR_ERR_INVALID_ARGUMENT',
      `${kind} must be a string of 1-256 characters, got ${JSON.stringify(name)}`,
    );
  }
}
