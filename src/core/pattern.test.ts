import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BusbarError } from './errors.ts';
import { compilePattern, type Pattern } from './pattern.ts';
import { MAX_TOPIC_LENGTH } from './topic.ts';

function rejects(pattern: unknown, message: RegExp): void {
  assert.throws(
    () => compilePattern(pattern as Pattern),
    (error: unknown) => {
      assert.ok(error instanceof BusbarError, 'a BusbarError');
      assert.equal(error.code, 'BUSBAR_ERR_INVALID_PATTERN');
      assert.equal(error.status, 400);
      assert.match(error.message, message);
      return true;
    },
  );
}

function matching(pattern: Pattern, topics: string[]): string[] {
  const compiled = compilePattern(pattern);
  return topics.filter((topic) => compiled.matches(topic));
}

const TOPICS = ['a', 'b', 'a.b', 'a.c', 'b.b', 'a.b.c', 'a.b.c.d', 'x.b', 'ab', 'a.bc'];

describe('compilePattern with an exact topic', () => {
  test('matches only that topic', () => {
    assert.deepEqual(matching('a.b', TOPICS), ['a.b']);
    assert.deepEqual(matching('a', TOPICS), ['a']);
  });

  test('does not match a prefix or an extension of the topic', () => {
    const compiled = compilePattern('order.created');
    assert.equal(compiled.matches('order'), false);
    assert.equal(compiled.matches('order.created.eu'), false);
    assert.equal(compiled.matches('order.create'), false);
  });

  test('is case-sensitive', () => {
    assert.equal(compilePattern('order.created').matches('Order.created'), false);
  });

  test('reports itself as exact and keeps its source', () => {
    const compiled = compilePattern('order.created');
    assert.equal(compiled.exact, 'order.created');
    assert.equal(compiled.source, 'order.created');
  });
});

describe('compilePattern with "*"', () => {
  test('"a.*" matches exactly one token after "a"', () => {
    assert.deepEqual(matching('a.*', TOPICS), ['a.b', 'a.c', 'a.bc']);
  });

  test('"a.*" does not match "a" nor "a.b.c"', () => {
    const compiled = compilePattern('a.*');
    assert.equal(compiled.matches('a'), false);
    assert.equal(compiled.matches('a.b.c'), false);
  });

  test('"*.b" matches any first token followed by "b"', () => {
    assert.deepEqual(matching('*.b', TOPICS), ['a.b', 'b.b', 'x.b']);
  });

  test('"*" alone matches every single-token topic and nothing longer', () => {
    assert.deepEqual(matching('*', TOPICS), ['a', 'b', 'ab']);
  });

  test('"a.*.c" matches one token in the middle', () => {
    assert.deepEqual(matching('a.*.c', TOPICS), ['a.b.c']);
    assert.equal(compilePattern('a.*.c').matches('a.c'), false);
  });

  test('"*.*" matches every two-token topic', () => {
    assert.deepEqual(matching('*.*', TOPICS), ['a.b', 'a.c', 'b.b', 'x.b', 'a.bc']);
  });

  test('a "*" token matches a whole token, not part of one', () => {
    assert.equal(compilePattern('a.*').matches('ab.c'), false);
  });

  test('reports itself as not exact', () => {
    assert.equal(compilePattern('a.*').exact, undefined);
  });
});

describe('compilePattern with ">"', () => {
  test('"a.>" matches one or more tokens after "a"', () => {
    assert.deepEqual(matching('a.>', TOPICS), ['a.b', 'a.c', 'a.b.c', 'a.b.c.d', 'a.bc']);
  });

  test('"a.>" does not match "a" itself', () => {
    assert.equal(compilePattern('a.>').matches('a'), false);
  });

  test('">" alone matches every topic of one token or more', () => {
    assert.deepEqual(matching('>', TOPICS), TOPICS);
  });

  test('"*.>" matches topics of at least two tokens', () => {
    assert.deepEqual(matching('*.>', TOPICS), [
      'a.b',
      'a.c',
      'b.b',
      'a.b.c',
      'a.b.c.d',
      'x.b',
      'a.bc',
    ]);
  });

  test('"a.*.>" needs at least three tokens', () => {
    assert.deepEqual(matching('a.*.>', TOPICS), ['a.b.c', 'a.b.c.d']);
  });

  test('"a.b.>" does not match "a.bc.d"', () => {
    assert.equal(compilePattern('a.b.>').matches('a.bc.d'), false);
  });

  test('reports itself as not exact', () => {
    assert.equal(compilePattern('a.>').exact, undefined);
  });
});

describe('compilePattern with a RegExp', () => {
  test('tests the topic with the RegExp', () => {
    assert.deepEqual(matching(/^a\.(b|c)$/, TOPICS), ['a.b', 'a.c']);
  });

  test('keeps the RegExp flags other than g and y', () => {
    assert.equal(compilePattern(/^ORDER\.created$/i).matches('order.created'), true);
  });

  test('a global RegExp matches consistently on repeated calls', () => {
    const compiled = compilePattern(/^order\./g);
    for (let i = 0; i < 10; i++) {
      assert.equal(compiled.matches('order.created'), true, `call ${i + 1}`);
    }
    assert.equal(compiled.matches('invoice.created'), false);
    assert.equal(compiled.matches('order.paid'), true);
  });

  test('a sticky RegExp matches consistently on repeated calls', () => {
    const compiled = compilePattern(/order/y);
    for (let i = 0; i < 10; i++) {
      assert.equal(compiled.matches('order.created'), true, `call ${i + 1}`);
    }
  });

  test('does not disturb the lastIndex of the RegExp it was given', () => {
    const regexp = /^order\./g;
    const compiled = compilePattern(regexp);
    compiled.matches('order.created');
    compiled.matches('order.paid');
    assert.equal(regexp.lastIndex, 0);
  });

  test('keeps the RegExp as its source and is not exact', () => {
    const regexp = /^a\./;
    const compiled = compilePattern(regexp);
    assert.equal(compiled.source, regexp);
    assert.equal(compiled.exact, undefined);
  });
});

describe('compilePattern with an invalid pattern', () => {
  test('rejects ">" before the last token, naming its position', () => {
    rejects('a.>.b', /">" \(token 2\) must be the last token/);
    rejects('>.a', /">" \(token 1\) must be the last token/);
  });

  test('rejects an empty token, naming its number', () => {
    rejects('a..b', /token 2 is empty/);
    rejects('.a', /token 1 is empty/);
    rejects('a.', /token 2 is empty/);
  });

  test('rejects a wildcard that is only part of a token, naming the token', () => {
    rejects('a.b*', /token 2 \("b\*"\) must be/);
    rejects('a.*b', /token 2 \("\*b"\) must be/);
    rejects('a.b>', /token 2 \("b>"\) must be/);
    rejects('**', /token 1 \("\*\*"\)/);
    rejects('a.>>', /token 2 \(">>"\)/);
  });

  test('rejects characters that cannot be in a topic, naming the token', () => {
    rejects('orders.new order', /token 2 \("new order"\)/);
    rejects('café', /token 1 \("café"\)/);
  });

  test('rejects an empty pattern, saying it is empty', () => {
    rejects('', /it is empty/);
  });

  test('rejects a pattern longer than a topic may be', () => {
    rejects('a'.repeat(MAX_TOPIC_LENGTH + 1), /characters long; the limit is 255/);
  });

  test('rejects values that are neither strings nor RegExps, naming their type', () => {
    rejects(42, /expected a string or RegExp, got number/);
    rejects(undefined, /expected a string or RegExp, got undefined/);
    rejects(null, /expected a string or RegExp, got object/);
    rejects({ source: 'a' }, /expected a string or RegExp, got object/);
    rejects(['a.b'], /expected a string or RegExp, got object/);
  });

  test('puts the pattern and the problem in the error details', () => {
    assert.throws(
      () => compilePattern('a..b'),
      (error: unknown) => {
        assert.ok(error instanceof BusbarError);
        assert.deepEqual(error.details, { pattern: 'a..b', problem: 'token 2 is empty' });
        return true;
      },
    );
  });
});

// An independent reading of the NATS rules: a pattern becomes an anchored
// RegExp where "*" is one token and a final ">" is one or more tokens.
function referenceMatches(pattern: string, topic: string): boolean {
  const parts = pattern.split('.').map((token) => {
    if (token === '*') return '[^.]+';
    if (token === '>') return '[^.]+(?:\\.[^.]+)*';
    return token.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  });
  return new RegExp(`^${parts.join('\\.')}$`).test(topic);
}

// mulberry32: a small seeded generator so a failure can be replayed.
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('compilePattern against a reference implementation', () => {
  test('agrees on 20,000 random patterns and topics over a small alphabet', () => {
    const seed = Date.now() % 1_000_000;
    const next = random(seed);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
    const literals = ['a', 'b', 'ab', '-'];
    let matched = 0;
    for (let i = 0; i < 20_000; i++) {
      const topic = Array.from({ length: 1 + Math.floor(next() * 4) }, () => pick(literals)).join(
        '.',
      );
      const length = 1 + Math.floor(next() * 4);
      const tokens = Array.from({ length }, (_, index) =>
        pick(index === length - 1 ? [...literals, '*', '>'] : [...literals, '*']),
      );
      const pattern = tokens.join('.');
      const expected = referenceMatches(pattern, topic);
      if (expected) matched++;
      assert.equal(
        compilePattern(pattern).matches(topic),
        expected,
        `pattern ${JSON.stringify(pattern)} on topic ${JSON.stringify(topic)} (seed ${seed})`,
      );
    }
    assert.ok(matched > 500, `only ${matched} matches: the generator is too sparse`);
  });
});
