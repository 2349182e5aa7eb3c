// Catch-up and live are one loop over log positions: a subscription that
// starts behind the head while publishers keep going sees every event once,
// in position order, with no gap at the switch-over.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { gate, range, until } from '../support/async.ts';
import { forEachStore } from './stores.ts';

type Events = { 'order.placed': { n: number }; 'stock.moved': { n: number } };

/** Asserts `seen` is 1..count, each once, in order. */
function assertEachOnceInOrder(seen: readonly number[], count: number): void {
  const repeated = seen.length - new Set(seen).size;
  assert.equal(repeated, 0, `${repeated} events were delivered more than once`);
  assert.equal(seen.length, count, `${count - seen.length} events were never delivered`);
  assert.deepEqual(seen, range(1, count + 1));
}

forEachStore((open) => {
  test('500 events of history then 500 published during the catch-up arrive exactly once, in position order', { timeout: 10_000 }, async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    await Promise.all(range(1, 501).map((n) => bus.publish('order.placed', { n })));
    assert.equal(await log.head(), 500);

    const seen: number[] = [];
    const positions: number[] = [];
    // However fast the store reads and however slow it commits (PostgreSQL
    // opens pool connections for the first batch), the first live events
    // commit before the history is handled.
    const firstBatchCommitted = gate();
    bus.subscribe('replay', 'order.*', async (event) => {
      seen.push(event.data.n);
      positions.push(event.sequence!);
      if (event.data.n === 1) await firstBatchCommitted.opened;
      await nextTurn();
    }, { from: 'beginning' });
    // Publishes in small concurrent batches while the reader is catching up.
    const behind: number[] = [];
    for (let n = 501; n <= 1000; n += 20) {
      await Promise.all(range(n, n + 20).map((each) => bus.publish('order.placed', { n: each })));
      behind.push(n + 19 - seen.length);
      firstBatchCommitted.open();
    }
    assert.ok(behind[0]! > 20, 'the first live events were committed during the catch-up');
    await bus.idle();

    assertEachOnceInOrder(seen, 1000);
    assert.deepEqual(positions, range(1, 1001));
    assert.deepEqual(await bus.lag('replay'), { checkpoint: 1000, head: 1000, events: 0, seconds: 0 });
  });

  // The timeout is what fails if the publishes wait for the blocked subscriber.
  test('a catch-up larger than the queue is read as room frees up, and publishers do not wait for it', { timeout: 5000 }, async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    await Promise.all(range(1, 301).map((n) => bus.publish('order.placed', { n })));
    const seen: number[] = [];
    // Held at the first event until the publishes below commit, so the
    // subscriber is far behind whatever the speed of the store.
    const published = gate();
    bus.subscribe('small-queue', 'order.*', async (event) => {
      seen.push(event.data.n);
      if (event.data.n === 1) await published.opened;
      await nextTurn();
    }, { from: 'beginning', queueLimit: 8 });
    await until(() => seen.length > 0);
    // The durable subscriber is far behind with a full queue: publishing still commits at once.
    const receipts = await Promise.all(range(301, 321).map((n) => bus.publish('order.placed', { n })));
    published.open();
    assert.deepEqual(receipts.map((each) => each.sequence), range(301, 321));
    assert.ok(seen.length < 300, `the subscriber had already handled ${seen.length} events`);
    await bus.idle();
    assertEachOnceInOrder(seen, 320);
  });

  test('a catch-up skips the topics it does not match, and its checkpoint still reaches the head', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    for (const n of range(1, 1201)) {
      // One order among many stock moves, across several pages of the log.
      if (n % 100 === 0) void bus.publish('order.placed', { n });
      else void bus.publish('stock.moved', { n });
    }
    await bus.publish('stock.moved', { n: 1201 });
    const seen: number[] = [];
    bus.subscribe('orders', 'order.*', (event) => {
      seen.push(event.data.n);
    }, { from: 'beginning' });
    await bus.idle();
    assert.deepEqual(seen, range(1, 13).map((n) => n * 100));
    const lag = await bus.lag('orders');
    assert.deepEqual(lag, { checkpoint: 1201, head: 1201, events: 0, seconds: 0 });
  });

  test('two subscriptions catching up from different places each get their own range once', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    await Promise.all(range(1, 101).map((n) => bus.publish('order.placed', { n })));
    const all: number[] = [];
    const recent: number[] = [];
    bus.subscribe('all', 'order.*', (event) => {
      all.push(event.data.n);
    }, { from: 'beginning' });
    bus.subscribe('recent', 'order.*', (event) => {
      recent.push(event.data.n);
    }, { from: { position: 90 } });
    await Promise.all(range(101, 111).map((n) => bus.publish('order.placed', { n })));
    await bus.idle();
    assertEachOnceInOrder(all, 110);
    assert.deepEqual(recent, range(91, 111));
  });
});
