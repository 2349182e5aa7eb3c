import { BusbarError } from '../../core/errors.ts';
import type { BusbarEvent } from '../../core/event.ts';
import { compilePattern, type CompiledPattern } from '../../core/pattern.ts';
import type { Principal } from '../context.ts';

/** More patterns than this in one subscription is a mistake, not a use case. */
export const MAX_PATTERNS = 64;
const MAX_SUBJECT_LENGTH = 1024;

/** What one streaming subscription wants: topic patterns and, optionally, one subject. */
export interface StreamFilter {
  /** The patterns as the client gave them (for `readAll({ topics })`). */
  readonly topics: readonly string[];
  readonly subject: string | undefined;
  /** Equal for filters that select the same events, so the hub can test them once. */
  readonly key: string;
  matches(event: BusbarEvent): boolean;
}

/**
 * Checks and compiles a subscription's patterns and subject, and that
 * `principal` may subscribe to every pattern. Throws
 * `BUSBAR_ERR_INVALID_PATTERN`, `BUSBAR_ERR_INVALID_ARGUMENT` or
 * `BUSBAR_ERR_FORBIDDEN`.
 *
 * @example
 * ```ts
 * const filter = streamFilter(['order.*'], 'shop-1', principal);
 * filter.matches(event) // true for an order.created about shop-1
 * ```
 */
export function streamFilter(topics: unknown, subject: unknown, principal: Principal): StreamFilter {
  if (!Array.isArray(topics) || topics.length === 0) {
    throw new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', 'topics must be a non-empty list of patterns');
  }
  if (topics.length > MAX_PATTERNS) {
    throw new BusbarError(
      'BUSBAR_ERR_INVALID_ARGUMENT',
      `at most ${MAX_PATTERNS} patterns per subscription, got ${topics.length}`,
    );
  }
  if (subject !== undefined && (typeof subject !== 'string' || subject.length === 0 || subject.length > MAX_SUBJECT_LENGTH)) {
    throw new BusbarError(
      'BUSBAR_ERR_INVALID_ARGUMENT',
      `subject must be a string of 1-${MAX_SUBJECT_LENGTH} characters`,
    );
  }
  const patterns: CompiledPattern[] = [];
  for (const topic of topics) {
    // Only NATS-style strings travel over the wire: a RegExp from a client
    // would let it run arbitrary (and arbitrarily slow) expressions here.
    if (typeof topic !== 'string') {
      throw new BusbarError('BUSBAR_ERR_INVALID_PATTERN', `patterns must be strings, got ${JSON.stringify(topic)}`);
    }
    patterns.push(compilePattern(topic));
  }
  for (const topic of topics as string[]) {
    if (!principal.can('subscribe', topic)) {
      throw new BusbarError('BUSBAR_ERR_FORBIDDEN', `"${principal.name}" may not subscribe to "${topic}"`, {
        details: { pattern: topic },
      });
    }
  }
  const unique = [...new Set(topics as string[])].sort();
  const exact = patterns.every((pattern) => pattern.exact !== undefined)
    ? new Set(patterns.map((pattern) => pattern.exact))
    : undefined;
  const topicMatches =
    exact !== undefined
      ? (type: string) => exact.has(type)
      : patterns.length === 1
        ? patterns[0]!.matches
        : (type: string) => patterns.some((pattern) => pattern.matches(type));
  return {
    topics: unique,
    subject: subject as string | undefined,
    key: JSON.stringify([unique, subject ?? null]),
    matches:
      subject === undefined
        ? (event) => topicMatches(event.type)
        : (event) => event.subject === subject && topicMatches(event.type),
  };
}

/** Splits `a.*,b.>` (and repeated query parameters) into patterns; undefined means every topic. */
export function topicsFromQuery(value: unknown): string[] {
  if (value === undefined) return ['>'];
  const parts = (Array.isArray(value) ? value : [value]).flatMap((item) =>
    typeof item === 'string' ? item.split(',') : [item],
  );
  return parts.map((part) => (typeof part === 'string' ? part.trim() : part));
}
