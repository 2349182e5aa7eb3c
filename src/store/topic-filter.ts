import { BusbarError } from '../core/errors.ts';
import { compilePattern, type Pattern } from '../core/pattern.ts';
import type { Recipients } from '../core/event-log.ts';

/**
 * The predicate behind `readAll({ topics })`: an event is kept when a pattern
 * matches its topic or when it was addressed to subscriptions by name, which
 * only the reader can resolve. Undefined topics keep everything.
 */
export function topicFilter(
  topics: readonly Pattern[] | undefined,
): ((type: string, recipients: Recipients | undefined) => boolean) | undefined {
  if (topics === undefined) return undefined;
  if (!Array.isArray(topics)) {
    throw new BusbarError('BUSBAR_ERR_INVALID_ARGUMENT', 'option "topics" must be an array of patterns');
  }
  const compiled = topics.map(compilePattern);
  return (type, recipients) =>
    recipients !== undefined || compiled.some((pattern) => pattern.matches(type));
}
