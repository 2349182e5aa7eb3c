import { BusbarError } from './errors.ts';
import { MAX_TOPIC_LENGTH, quote } from './topic.ts';

/**
 * What a subscription listens to: a topic, a NATS-style wildcard pattern
 * (`orders.*` matches one token, `orders.>` one or more), or a RegExp tested
 * against the topic like `RegExp#test` (anchor it, `/^orders\./`, to match
 * from the start).
 */
export type Pattern = string | RegExp;

/** A pattern checked once and compiled to a predicate over topics. */
export interface CompiledPattern {
  readonly source: Pattern;
  /** True when the pattern has no wildcard: it can only ever match this topic. */
  readonly exact: string | undefined;
  matches(topic: string): boolean;
}

const TOKEN = /^[A-Za-z0-9_-]+$/;

/**
 * Validates and compiles a pattern; throws `BUSBAR_ERR_INVALID_PATTERN` naming
 * the bad token.
 *
 * @example
 * ```ts
 * compilePattern('orders.*').matches('orders.created') // true
 * compilePattern('orders.>').matches('orders.eu.created') // true
 * ```
 */
export function compilePattern(pattern: Pattern): CompiledPattern {
  if (pattern instanceof RegExp) return compileRegExp(pattern);
  if (typeof pattern !== 'string') {
    throw invalid(pattern, `expected a string or RegExp, got ${typeof pattern}`);
  }
  if (pattern.length === 0) throw invalid(pattern, 'it is empty');
  if (pattern.length > MAX_TOPIC_LENGTH) {
    throw invalid(
      pattern,
      `it is ${pattern.length} characters long; the limit is ${MAX_TOPIC_LENGTH}`,
    );
  }
  const tokens = pattern.split('.');
  let wildcard = false;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (token === '*') wildcard = true;
    else if (token === '>') {
      if (i !== tokens.length - 1)
        throw invalid(pattern, `">" (token ${i + 1}) must be the last token`);
      wildcard = true;
    } else if (token.length === 0) throw invalid(pattern, `token ${i + 1} is empty`);
    else if (!TOKEN.test(token)) {
      throw invalid(
        pattern,
        `token ${i + 1} ("${token}") must be [A-Za-z0-9_-]+, "*" or a final ">"`,
      );
    }
  }
  if (!wildcard) return { source: pattern, exact: pattern, matches: (topic) => topic === pattern };
  return {
    source: pattern,
    exact: undefined,
    matches: (topic) => matchTokens(tokens, topic.split('.')),
  };
}

function matchTokens(pattern: string[], topic: string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const token = pattern[i];
    if (token === '>') return topic.length > i;
    if (i >= topic.length) return false;
    if (token !== '*' && token !== topic[i]) return false;
  }
  return pattern.length === topic.length;
}

function compileRegExp(pattern: RegExp): CompiledPattern {
  // A global or sticky RegExp keeps lastIndex between test() calls and would
  // match every other topic; a private copy without those flags does not.
  const regexp = new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''));
  return { source: pattern, exact: undefined, matches: (topic) => regexp.test(topic) };
}

function invalid(pattern: unknown, problem: string): BusbarError {
  return new BusbarError(
    'BUSBAR_ERR_INVALID_PATTERN',
    `invalid pattern ${quote(pattern)}: ${problem}`,
    {
      details: { pattern: String(pattern), problem },
    },
  );
}
