import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DeliveryWindow } from './delivery-window.ts';

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (error: Error) => void } {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((yes, no) => ((resolve = yes), (reject = no)));
  return { promise, resolve, reject };
}

describe('the delivery window', () => {
  test('acknowledges a prefix: a position counts only once every earlier one resolved', async () => {
    const window = new DeliveryWindow(10, 8);
    const [a, b] = [deferred(), deferred()];
    window.add(11, a.promise);
    window.add(12); // nothing to deliver at 12
    window.add(13, b.promise);
    b.resolve();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(window.acknowledged, 10, '13 resolved, but 11 has not');
    a.resolve();
    await window.drain();
    assert.equal(window.acknowledged, 13);
  });

  test('waits for room once the limit is in flight', async () => {
    const window = new DeliveryWindow(0, 2);
    const [a, b] = [deferred(), deferred()];
    window.add(1, a.promise);
    window.add(2, b.promise);
    let roomy = false;
    const room = window.room().then(() => (roomy = true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(roomy, false);
    a.resolve();
    await room;
    assert.equal(window.pending, 1);
    b.resolve();
    await window.drain();
  });

  test('keeps the first failure, acknowledges nothing after it, and raises it', async () => {
    const window = new DeliveryWindow(0, 8);
    const failure = new Error('the bus is down');
    window.add(1, Promise.resolve());
    window.add(2, Promise.reject(failure));
    window.add(3, Promise.resolve());
    await window.drain();
    assert.equal(window.acknowledged, 1);
    assert.throws(() => window.check(), failure);
    await assert.rejects(window.room(), failure);
  });
});
