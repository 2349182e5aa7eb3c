import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BusbarError } from './errors.ts';
import { assertTopic, isTopic, MAX_TOPIC_LENGTH } from './topic.ts';

function rejects(topic: unknown, message: RegExp): void {
  assert.throws(
    () => assertTopic(topic),
    (error: unknown) => {
      assert.ok(error instanceof BusbarError, 'a BusbarError');
      assert.equal(error.code, 'BUSBAR_ERR_INVALID_TOPIC');
      assert.equal(error.status, 400);
      assert.match(error.message, message);
      return true;
    },
  );
  assert.equal(isTopic(topic), false);
}

describe('assertTopic', () => {
  test('accepts dot-separated tokens of letters, digits, underscores and dashes', () => {
    for (const topic of [
      'a',
      'orders',
      'order.created',
      'document.added',
      'Order.Created_v2',
      'a-b.c_d.E-9',
      '0.1.2.3.4.5.6.7.8.9',
      '_',
      '-',
      'a'.repeat(MAX_TOPIC_LENGTH),
    ]) {
      assert.doesNotThrow(() => assertTopic(topic), topic);
      assert.equal(isTopic(topic), true, topic);
    }
  });

  test('accepts a topic of exactly the maximum length made of many tokens', () => {
    const topic = Array.from({ length: 128 }, () => 'a')
      .join('.')
      .slice(0, MAX_TOPIC_LENGTH);
    assert.equal(topic.length, MAX_TOPIC_LENGTH);
    assert.doesNotThrow(() => assertTopic(topic));
  });

  test('rejects an empty topic, saying it is empty', () => {
    rejects('', /it is empty/);
  });

  test('rejects an empty token in the middle, naming its number', () => {
    rejects('orders..created', /token 2 is empty/);
    rejects('a.b.c..d', /token 4 is empty/);
  });

  test('rejects a leading dot as an empty first token', () => {
    rejects('.orders', /token 1 is empty/);
  });

  test('rejects a trailing dot as an empty last token', () => {
    rejects('orders.', /token 2 is empty/);
  });

  test('rejects a lone dot', () => {
    rejects('.', /token 1 is empty/);
  });

  test('rejects a space, naming the token and the character', () => {
    rejects('order created', /token 1 \("order created"\) contains " "/);
    rejects('orders. created', /token 2 \(" created"\) contains " "/);
    rejects(' orders', /contains " "/);
  });

  test('rejects punctuation, naming the character', () => {
    rejects('orders.created!', /token 2 \("created!"\) contains "!"/);
    rejects('orders/created', /contains "\/"/);
    rejects('orders:created', /contains ":"/);
    rejects('a.b$c', /token 2 \("b\$c"\) contains "\$"/);
  });

  test('rejects non-ASCII letters, naming the character', () => {
    rejects('café.opened', /token 1 \("café"\) contains "é"/);
    rejects('orders.créé', /token 2/);
  });

  test('rejects an emoji, naming the whole character rather than half a surrogate pair', () => {
    rejects('orders.🚀', /token 2 \("🚀"\) contains "🚀"/);
  });

  test('rejects the wildcard "*" in a topic', () => {
    rejects('orders.*', /token 2 \("\*"\) contains "\*"/);
  });

  test('rejects the wildcard ">" in a topic', () => {
    rejects('orders.>', /token 2 \(">"\) contains ">"/);
  });

  test('rejects a tab or a newline', () => {
    rejects('orders\tcreated', /contains "\\t"/);
    rejects('orders.created\n', /contains "\\n"/);
  });

  test('rejects a topic one character over the limit, stating its length and the limit', () => {
    rejects(
      'a'.repeat(MAX_TOPIC_LENGTH + 1),
      new RegExp(`it is ${MAX_TOPIC_LENGTH + 1} characters long; the limit is ${MAX_TOPIC_LENGTH}`),
    );
  });

  test('shortens a very long topic when quoting it in the message', () => {
    const topic = 'a'.repeat(1000);
    assert.throws(
      () => assertTopic(topic),
      (error: unknown) => {
        assert.ok(error instanceof BusbarError);
        assert.ok(error.message.length < 300, `message is ${error.message.length} long`);
        assert.match(error.message, /…/);
        return true;
      },
    );
  });

  test('rejects values that are not strings, naming their type', () => {
    rejects(undefined, /expected a string, got undefined/);
    rejects(null, /expected a string, got object/);
    rejects(42, /expected a string, got number/);
    rejects(['a', 'b'], /expected a string, got object/);
    rejects({ topic: 'a' }, /expected a string, got object/);
    rejects(true, /expected a string, got boolean/);
    rejects(Symbol('a'), /expected a string, got symbol/);
  });

  test('puts the topic and the problem in the error details', () => {
    assert.throws(
      () => assertTopic('a..b'),
      (error: unknown) => {
        assert.ok(error instanceof BusbarError);
        assert.deepEqual(error.details, { topic: 'a..b', problem: 'token 2 is empty' });
        assert.deepEqual(error.toJSON(), {
          code: 'BUSBAR_ERR_INVALID_TOPIC',
          message: error.message,
          details: { topic: 'a..b', problem: 'token 2 is empty' },
        });
        return true;
      },
    );
  });
});
