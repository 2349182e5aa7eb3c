// Backpressure: bounded queues behind a stalled subscriber, the three overflow
// policies, isolation of fast subscribers from slow ones, and bounded memory.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createBus, OverloadError, type Receipt } from './index.ts';
import { gate, range } from '../../test/support/async.ts';

type Events = { 'feed.item': { n: number; blob?: string } };

/**
 * A subscriber stuck on its first event until `release()`; the events after
 * it are handled at once. `started` resolves when the first event is in hand.
 */
function stalled() {
  const first = gate();
  const started = gate();
  const handled: number[] = [];
  const handler = async (event: { data: { n: number } }) => {
    if (handled.length === 0) {
      started.open();
      handled.push(event.data.n);
      await first.opened;
      return;
    }
    handled.push(event.data.n);
  };
  return { handler, handled, started: started.opened, release: first.open };
}

/** The garbage collector, exposed at run time when node was not started with --expose-gc. */
function collector(): (() => void) | undefined {
  if (typeof globalThis.gc === 'function') return globalThis.gc as () => void;
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  } catch {
    return undefined;
  }
}

test('a full queue with policy reject refuses the next publish with OverloadError and delivers it to nobody', async () => {
  const bus = createBus<Events>();
  const slow = stalled();
  const fast: number[] = [];
  const slowHandle = bus.subscribe('slow', 'feed.item', slow.handler, {
    queueLimit: 100,
    overflow: 'reject',
  });
  bus.subscribe('fast', 'feed.item', (event) => {
    fast.push(event.data.n);
  });

  await bus.publish('feed.item', { n: 0 });
  await slow.started; // event 0 is in the handler, not in the queue
  for (let n = 1; n <= 100; n++) await bus.publish('feed.item', { n });
  assert.equal(slowHandle.stats().pending, 100);

  const refused = await bus.publish('feed.item', { n: 101 }).then(
    () => assert.fail('the publish beyond the queue limit resolved'),
    (error: unknown) => error,
  );
  assert.ok(refused instanceof OverloadError);
  assert.equal(refused.code, 'BUSBAR_ERR_OVERLOAD');
  assert.equal(refused.status, 429);
  assert.equal(refused.details?.subscription, 'slow');
  assert.equal(refused.details?.queueLimit, 100);
  assert.equal(slowHandle.stats().pending, 100, 'the refused event was not queued');

  slow.release();
  await bus.idle();
  assert.deepEqual(slow.handled, range(0, 101));
  assert.deepEqual(fast, range(0, 101), 'the fast subscriber got everything but the refused event');
  assert.equal(bus.stats().total_published, 101);

  // Once drained, the queue takes events again.
  await bus.publish('feed.item', { n: 102 });
  await bus.idle();
  assert.deepEqual(slow.handled.slice(-1), [102]);
  await bus.close();
});

test('a full queue with policy wait holds publishers until there is room, then delivers every event once and in order', async () => {
  const bus = createBus<Events>();
  const slow = stalled();
  const handle = bus.subscribe('slow', 'feed.item', slow.handler, {
    queueLimit: 100,
    overflow: 'wait',
  });

  await bus.publish('feed.item', { n: 0 });
  await slow.started;
  for (let n = 1; n <= 100; n++) await bus.publish('feed.item', { n });

  const resolved = new Set<number>();
  const waiting: Promise<Receipt>[] = [];
  for (let n = 101; n < 150; n++) {
    waiting.push(
      bus.publish('feed.item', { n }).then((receipt) => {
        resolved.add(n);
        return receipt;
      }),
    );
  }
  await sleep(20);
  assert.equal(resolved.size, 0, 'a publish beyond the limit resolved while the queue was full');
  assert.equal(handle.stats().pending, 100);
  assert.equal(bus.stats().total_published, 101);

  slow.release();
  const receipts = await Promise.all(waiting);
  await bus.idle();
  assert.equal(resolved.size, 49);
  assert.deepEqual(slow.handled, range(0, 150));
  for (const receipt of receipts) {
    const [result] = await receipt.settled();
    assert.equal(result?.status, 'completed');
  }
  await bus.close();
});

test('a full queue with policy drop-oldest drops and counts the oldest events and delivers the newest', async () => {
  const bus = createBus<Events>();
  const slow = stalled();
  const handle = bus.subscribe('slow', 'feed.item', slow.handler, {
    queueLimit: 100,
    overflow: 'drop-oldest',
  });

  await bus.publish('feed.item', { n: 0 });
  await slow.started;
  const receipts: Receipt[] = [];
  for (let n = 1; n <= 250; n++) {
    receipts.push(await bus.publish('feed.item', { n }));
    assert.ok(handle.stats().pending <= 100, `queue grew to ${handle.stats().pending}`);
  }

  const stats = bus.stats();
  assert.equal(stats.subscriptions[0]!.dropped, 150);
  assert.equal(stats.total_dropped, 150);
  assert.equal(stats.queue_size, 100);
  for (const receipt of receipts.slice(0, 150)) {
    assert.deepEqual(await receipt.settled(), [{ subscription: 'slow', status: 'dropped' }]);
  }

  slow.release();
  await bus.idle();
  assert.deepEqual(slow.handled, [0, ...range(151, 251)]);
  for (const receipt of receipts.slice(150)) {
    const [result] = await receipt.settled();
    assert.equal(result?.status, 'completed');
  }
  assert.equal(handle.stats().completed, 101);
  assert.equal(handle.stats().dropped, 150);
  await bus.close();
});

test('a fast subscriber keeps receiving at its own pace while a drop-oldest subscriber on the same topic is stalled', async () => {
  const bus = createBus<Events>();
  const slow = stalled();
  const fast: number[] = [];
  const slowHandle = bus.subscribe('slow', 'feed.item', slow.handler, {
    queueLimit: 10,
    overflow: 'drop-oldest',
  });
  bus.subscribe('fast', 'feed.item', async (event) => {
    await nextTurn();
    fast.push(event.data.n);
  });

  await bus.publish('feed.item', { n: 0 });
  await slow.started;
  for (let n = 1; n < 500; n++) {
    await bus.publish('feed.item', { n });
    // The fast subscriber is never more than a few events behind the publisher.
    if (n % 50 === 0) {
      for (let turns = 0; fast.length < n + 1 && turns < 100; turns++) await nextTurn();
      assert.equal(fast.length, n + 1, `fast subscriber fell behind at ${n}`);
    }
  }
  for (let turns = 0; fast.length < 500 && turns < 100; turns++) await nextTurn();

  assert.deepEqual(fast, range(0, 500));
  assert.deepEqual(slow.handled, [0], 'the slow subscriber is still stuck on its first event');
  assert.equal(slowHandle.stats().pending, 10);
  assert.equal(slowHandle.stats().dropped, 489);

  slow.release();
  await bus.idle();
  assert.deepEqual(slow.handled, [0, ...range(490, 500)]);
  await bus.close();
});

test('memory stays bounded when 200,000 one-kilobyte events hit a stalled drop-oldest subscriber', async () => {
  const gc = collector();
  const bus = createBus<Events>({ stats: false });
  const slow = stalled();
  const handle = bus.subscribe('slow', 'feed.item', slow.handler, {
    queueLimit: 1_000,
    overflow: 'drop-oldest',
  });
  await bus.publish('feed.item', { n: 0 });
  await slow.started;

  gc?.();
  const before = process.memoryUsage().heapUsed;
  let maxQueued = 0;
  for (let n = 1; n <= 200_000; n++) {
    // A fresh, flat 1 KB string per event (padEnd would share its filler), so
    // retained payloads would show.
    const blob = Buffer.alloc(1_024, 97 + (n % 26)).toString('latin1');
    await bus.publish('feed.item', { n, blob });
    if (n % 100 === 0) maxQueued = Math.max(maxQueued, handle.stats().pending);
  }
  gc?.();
  const grownMb = (process.memoryUsage().heapUsed - before) / 1024 / 1024;

  assert.ok(maxQueued <= 1_000, `the queue grew to ${maxQueued}`);
  assert.equal(handle.stats().pending, 1_000);
  assert.equal(handle.stats().dropped, 199_000);
  // 200,000 retained payloads would be ~200 MB; without a collector allow slack for garbage.
  const bound = gc === undefined ? 150 : 50;
  assert.ok(grownMb < bound, `heap grew by ${grownMb.toFixed(1)} MB (bound ${bound} MB)`);

  slow.release();
  await bus.idle();
  assert.deepEqual(slow.handled, [0, ...range(199_001, 200_001)]);
  await bus.close();
});

test('drop-oldest on a keyed concurrent subscription never lets two events with the same key run at once', async () => {
  const bus = createBus<Events>();
  const gates = new Map<number, () => void>();
  const running = new Map<string, number>();
  const overlaps: string[] = [];
  const handled: number[] = [];
  bus.subscribe(
    'slow',
    'feed.item',
    async (event) => {
      const key = event.partitionkey;
      if (key !== undefined) {
        const now = (running.get(key) ?? 0) + 1;
        running.set(key, now);
        if (now > 1) overlaps.push(`event ${event.data.n} started while key ${key} was busy`);
      }
      await new Promise<void>((resolve) => gates.set(event.data.n, resolve));
      handled.push(event.data.n);
      if (key !== undefined) running.set(key, running.get(key)! - 1);
    },
    { concurrency: 2, queueLimit: 2, overflow: 'drop-oldest' },
  );

  await bus.publish('feed.item', { n: 1 }, { key: 'a' }); // in flight, holds key a
  await bus.publish('feed.item', { n: 2 }); // in flight
  await nextTurn();
  assert.deepEqual([...gates.keys()], [1, 2]);
  const third = await bus.publish('feed.item', { n: 3 }, { key: 'a' }); // queued
  await bus.publish('feed.item', { n: 4 }, { key: 'a' }); // queued: the queue is full
  await bus.publish('feed.item', { n: 5 }); // drops event 3
  assert.deepEqual(await third.settled(), [{ subscription: 'slow', status: 'dropped' }]);

  // A slot frees up: event 5 may start, event 4 must keep waiting for event 1.
  gates.get(2)!();
  await sleep(5);
  assert.deepEqual(overlaps, []);
  assert.ok(!gates.has(4), 'event 4 (key a) started while event 1 (key a) was in flight');

  for (let turns = 0; handled.length < 4 && turns < 200; turns++) {
    for (const [n, open] of gates) if (!handled.includes(n)) open();
    await nextTurn();
  }
  await bus.idle();
  assert.deepEqual(overlaps, []);
  assert.deepEqual(handled.sort(), [1, 2, 4, 5]);
  await bus.close();
});

test('drop-oldest keeps the queue bounded when every event shares one key, in every queue order', async () => {
  const setups = [
    { order: 'fifo', concurrency: 2 },
    { order: 'lifo', concurrency: 1 },
    { order: 'priority', concurrency: 1 },
  ] as const;
  const unbounded: string[] = [];
  for (const { order, concurrency } of setups) {
    const bus = createBus<Events>();
    const slow = stalled();
    const handle = bus.subscribe('slow', 'feed.item', slow.handler, {
      order,
      concurrency,
      queueLimit: 10,
      overflow: 'drop-oldest',
    });
    await bus.publish('feed.item', { n: 0 }, { key: 'hot' });
    await slow.started;
    let maxQueued = 0;
    for (let n = 1; n <= 1_000; n++) {
      await bus.publish('feed.item', { n }, { key: 'hot' });
      maxQueued = Math.max(maxQueued, handle.stats().pending);
    }
    const { dropped } = handle.stats();
    slow.release();
    await bus.idle();
    if (maxQueued > 10 || dropped !== 990 || slow.handled.length !== 11) {
      unbounded.push(
        `${order} × ${concurrency}: queue reached ${maxQueued} (limit 10), ${dropped} dropped, ${slow.handled.length} handled`,
      );
    } else {
      // The newest ten survive, still in publish order for their key.
      assert.deepEqual(slow.handled, [0, ...range(991, 1_001)]);
    }
    await bus.close();
  }
  assert.deepEqual(unbounded, []);
});

test('publishers waiting for room are released in the order they arrived', async () => {
  const bus = createBus<Events>();
  const slow = stalled();
  bus.subscribe('slow', 'feed.item', slow.handler, { queueLimit: 5, overflow: 'wait' });
  await bus.publish('feed.item', { n: 0 });
  await slow.started;
  for (let n = 1; n <= 5; n++) await bus.publish('feed.item', { n });

  const order: number[] = [];
  const waiting = range(6, 56).map((n) =>
    bus.publish('feed.item', { n }).then(() => order.push(n)),
  );
  slow.release();
  await Promise.all(waiting);
  await bus.idle();

  assert.deepEqual(order, range(6, 56));
  assert.deepEqual(slow.handled, range(0, 56));
  await bus.close();
});

test('under policy wait a publish call that has to wait is never overtaken by a later publish call', async () => {
  const bus = createBus<Events>();
  const handled: number[] = [];
  bus.subscribe(
    'slow',
    'feed.item',
    async (event) => {
      await null;
      handled.push(event.data.n);
    },
    { queueLimit: 3, overflow: 'wait' },
  );
  // Four publishers share one key; `n` is the global order of the publish calls.
  let calls = 0;
  const publishers = range(0, 4).map(async (p) => {
    for (let i = 0; i < 200; i++) {
      const publishing = bus.publish('feed.item', { n: calls++ }, { key: 'k' });
      if ((i + p) % 3 === 0) await publishing;
      else await null;
    }
  });
  await Promise.all(publishers);
  await bus.idle();

  assert.equal(handled.length, 800);
  const overtaken = handled.filter((n, i) => i > 0 && n < handled[i - 1]!).length;
  assert.equal(overtaken, 0, `${overtaken} events were handled after a later publish call's event`);
  assert.deepEqual(handled, range(0, 800));
  await bus.close();
});
