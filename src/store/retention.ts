import type { StreamMetadata } from './event-store.ts';

/**
 * What a stream's metadata keeps, as the memory and SQLite stores apply it
 * (the PostgreSQL store says the same in SQL): versions from `firstVersion`
 * on, recorded at or after `oldestRecordedAt` (epoch ms; 0 keeps any age).
 */
export function retentionBounds(
  metadata: StreamMetadata,
  version: number,
  now = Date.now(),
): { firstVersion: number; oldestRecordedAt: number } {
  const { maxCount, maxAge, truncateBefore } = metadata;
  return {
    firstVersion: Math.max(truncateBefore ?? 0, maxCount === undefined ? 0 : version - maxCount + 1),
    oldestRecordedAt: maxAge === undefined ? 0 : now - maxAge * 1000,
  };
}

/** Whether an event recorded at `recordedAt` is past `maxAge` seconds: hidden until deleted. */
export function isPastMaxAge(maxAge: number | undefined, recordedAt: number, now = Date.now()): boolean {
  return maxAge !== undefined && recordedAt < now - maxAge * 1000;
}
