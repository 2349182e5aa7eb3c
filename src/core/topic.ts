import { BusbarError } from './errors.ts';

/** Topics longer than this are refused: they are keys in routing tables and log indexes. */
export const MAX_TOPIC_LENGTH = 255;

const TOKEN = /^[A-Za-z0-9_-]+$/;

/**
 * Throws `BUSBAR_ERR_INVALID_TOPIC` naming the offending part unless `topic` is
 * dot-separated `[A-Za-z0-9_-]+` tokens, e.g. `document.added`.
 *
 * @example
 * ```ts
 * assertTopic('orders.created') // ok
 * assertTopic('orders..created') // throws: token 2 is empty
 * ```
 */
export function assertTopic(topic: unknown): asserts topic is string {
  const problem = topicProblem(topic);
  if (problem !== undefined) {
    throw new BusbarError('BUSBAR_ERR_INVALID_TOPIC', `invalid topic ${quote(topic)}: ${problem}`, {
      details: { topic: typeof topic === 'string' ? topic : String(topic), problem },
    });
  }
}

/** True when `topic` is a valid topic; never throws. */
export function isTopic(topic: unknown): topic is string {
  return topicProblem(topic) === undefined;
}

// One pass over the whole topic; the token-by-token walk below only runs to
// say what is wrong with one that fails it.
const WHOLE = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/;

function topicProblem(topic: unknown): string | undefined {
  if (typeof topic !== 'string') return `expected a string, got ${typeof topic}`;
  if (topic.length <= MAX_TOPIC_LENGTH && WHOLE.test(topic)) return undefined;
  if (topic.length === 0) return 'it is empty';
  if (topic.length > MAX_TOPIC_LENGTH)
    return `it is ${topic.length} characters long; the limit is ${MAX_TOPIC_LENGTH}`;
  const tokens = topic.split('.');
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (token.length === 0) return `token ${i + 1} is empty`;
    if (!TOKEN.test(token)) {
      const bad = [...token].find((ch) => !/[A-Za-z0-9_-]/.test(ch));
      return `token ${i + 1} ("${token}") contains ${JSON.stringify(bad)}; tokens are [A-Za-z0-9_-]+`;
    }
  }
  return undefined;
}

export function quote(value: unknown): string {
  if (typeof value !== 'string') return String(value);
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}
