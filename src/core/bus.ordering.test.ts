// Ordering under load: per-key lanes with concurrency, concurrency that scales
// with queue depth, and the FIFO / LIFO / priority queue orders.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { createBus } from './index.ts';
import { gate } from '../../test/support/async.ts';

type Events = { 'job.run': { n: number } };

/** 0 to 3 ms, so handlers finish out of their start order. */
function jitter(): Promise<unknown> {
  return sleep(Math.floor(Math.random() * 4));
}

test('events sharing a key are handled one at a time and in publish order under concurrency 16', async () => {
  const bus = createBus<Events>();
  const keys = 20;
  const total = 2_000;
  const inFlightByKey = new Map<string, number>();
  const seenByKey = new Map<string, number[]>();
  let inFlight = 0;
  let maxInFlight = 0;
  let maxPerKey = 0;
  bus.subscribe(
    'worker',
    'job.run',
    async (event) => {
      const key = event.partitionkey!;
      const mine = (inFlightByKey.get(key) ?? 0) + 1;
      inFlightByKey.set(key, mine);
      maxPerKey = Math.max(maxPerKey, mine);
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      seenByKey.get(key)!.push(event.data.n);
      await jitter();
      inFlight--;
      inFlightByKey.set(key, inFlightByKey.get(key)! - 1);
    },
    { concurrency: 16 },
  );
  const expectedByKey = new Map<string, number[]>();
  for (let k = 0; k < keys; k++) {
    seenByKey.set(`k${k}`, []);
    expectedByKey.set(`k${k}`, []);
  }
  for (let n = 0; n < total; n++) {
    const key = `k${Math.floor(Math.random() * keys)}`;
    expectedByKey.get(key)!.push(n);
    await bus.publish('job.run', { n }, { key });
  }
  await bus.idle();

  assert.equal(maxPerKey, 1, 'two events with the same key ran at once');
  assert.ok(maxInFlight > 1, `different keys never ran concurrently (max ${maxInFlight})`);
  assert.ok(maxInFlight <= 16, `concurrency exceeded 16 (max ${maxInFlight})`);
  assert.deepEqual(seenByKey, expectedByKey);
  assert.equal(bus.stats().subscriptions[0]!.completed, total);
  await bus.close();
});

test('events without a key run concurrently, up to the concurrency and no further', async () => {
  const bus = createBus<Events>();
  const seen = new Set<number>();
  let duplicates = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  bus.subscribe(
    'worker',
    'job.run',
    async (event) => {
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      if (seen.has(event.data.n)) duplicates++;
      seen.add(event.data.n);
      await jitter();
      inFlight--;
    },
    { concurrency: 16 },
  );
  for (let n = 0; n < 2_000; n++) await bus.publish('job.run', { n });
  await bus.idle();

  assert.ok(maxInFlight > 1, `unkeyed events never overlapped (max ${maxInFlight})`);
  assert.ok(maxInFlight <= 16, `concurrency exceeded 16 (max ${maxInFlight})`);
  assert.equal(seen.size, 2_000);
  assert.equal(duplicates, 0);
  await bus.close();
});

test('a scaling concurrency stays at its minimum while the queue is shallow', async () => {
  const bus = createBus<Events>();
  let inFlight = 0;
  let maxInFlight = 0;
  const handled: number[] = [];
  const handle = bus.subscribe(
    'worker',
    'job.run',
    async (event) => {
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      await jitter();
      handled.push(event.data.n);
      inFlight--;
    },
    { concurrency: { min: 1, max: 8, scaleStep: 10 } },
  );
  // Nine queued at once is below one scale step: one at a time.
  for (let n = 0; n < 9; n++) bus.publish('job.run', { n });
  await bus.idle();
  // A trickle, each handled before the next arrives.
  for (let n = 9; n < 40; n++) {
    await bus.publish('job.run', { n });
    if (n % 3 === 0) await bus.idle();
  }
  await bus.idle();

  assert.equal(maxInFlight, 1);
  assert.deepEqual(
    handled,
    Array.from({ length: 40 }, (_, n) => n),
  );
  assert.equal(handle.stats().concurrency, 1);
  await bus.close();
});

test('a scaling concurrency rises with a deep queue and never exceeds its maximum', async () => {
  const bus = createBus<Events>();
  let inFlight = 0;
  let maxInFlight = 0;
  let handled = 0;
  const handle = bus.subscribe(
    'worker',
    'job.run',
    async () => {
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      await jitter();
      handled++;
      inFlight--;
    },
    { concurrency: { min: 1, max: 8, scaleStep: 10 } },
  );
  const receipts = [];
  for (let n = 0; n < 500; n++) receipts.push(bus.publish('job.run', { n }));
  await Promise.all(receipts);
  assert.equal(handle.stats().concurrency, 8, 'a queue of ~500 should allow the maximum');
  await bus.idle();

  assert.ok(maxInFlight > 1, `concurrency never rose (max ${maxInFlight})`);
  assert.ok(maxInFlight <= 8, `concurrency exceeded 8 (max ${maxInFlight})`);
  assert.equal(handled, 500);
  assert.equal(handle.stats().concurrency, 1, 'an empty queue falls back to the minimum');
  await bus.close();
});

test('the default concurrency of 1 handles every event in global publish order', async () => {
  const bus = createBus<Events>();
  const handled: number[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  bus.subscribe('worker', 'job.run', async (event) => {
    maxInFlight = Math.max(maxInFlight, ++inFlight);
    handled.push(event.data.n);
    if (event.data.n % 10 === 0) await jitter();
    inFlight--;
  });
  // Keys do not matter at concurrency 1: order is global.
  for (let n = 0; n < 1_000; n++)
    bus.publish('job.run', { n }, n % 2 === 0 ? { key: `k${n % 7}` } : undefined);
  await bus.idle();

  assert.equal(maxInFlight, 1);
  assert.deepEqual(
    handled,
    Array.from({ length: 1_000 }, (_, n) => n),
  );
  await bus.close();
});

test('a LIFO subscription handles the most recently queued event first', async () => {
  const bus = createBus<Events>();
  const first = gate();
  const started = gate();
  const handled: number[] = [];
  bus.subscribe(
    'worker',
    'job.run',
    async (event) => {
      if (event.data.n === 0) {
        started.open();
        await first.opened;
      }
      handled.push(event.data.n);
    },
    { order: 'lifo' },
  );
  await bus.publish('job.run', { n: 0 });
  await started.opened;
  for (let n = 1; n <= 5; n++) await bus.publish('job.run', { n });
  first.open();
  await bus.idle();

  assert.deepEqual(handled, [0, 5, 4, 3, 2, 1]);
  await bus.close();
});

test('a priority subscription handles higher priorities first and equal priorities in publish order', async () => {
  const bus = createBus<Events>();
  const first = gate();
  const started = gate();
  const handled: number[] = [];
  bus.subscribe(
    'worker',
    'job.run',
    async (event) => {
      if (event.data.n === 0) {
        started.open();
        await first.opened;
      }
      handled.push(event.data.n);
    },
    { order: 'priority' },
  );
  await bus.publish('job.run', { n: 0 }, { priority: 0 });
  await started.opened;
  const priorities = [1, 5, 3, 5, 1, -2, 3, 0, 5, 1];
  for (let i = 0; i < priorities.length; i++)
    await bus.publish('job.run', { n: i + 1 }, { priority: priorities[i]! });
  first.open();
  await bus.idle();

  const expected = priorities
    .map((priority, i) => ({ priority, n: i + 1 }))
    .sort((a, b) => b.priority - a.priority || a.n - b.n)
    .map((each) => each.n);
  assert.deepEqual(handled, [0, ...expected]);
  assert.deepEqual(expected, [2, 4, 9, 3, 7, 1, 5, 10, 8, 6]);
  await bus.close();
});

/** Handled numbers grouped by key, in handling order. */
function byKey(handled: { key: string; n: number }[]): Record<string, number[]> {
  const groups: Record<string, number[]> = {};
  for (const { key, n } of handled) (groups[key] ??= []).push(n);
  return groups;
}

test('a LIFO subscription still keeps publish order among events that share a key', async () => {
  const bus = createBus<Events>();
  const first = gate();
  const started = gate();
  const handled: { key: string; n: number }[] = [];
  bus.subscribe(
    'worker',
    'job.run',
    async (event) => {
      if (event.data.n === 0) {
        started.open();
        await first.opened;
      }
      handled.push({ key: event.partitionkey ?? '-', n: event.data.n });
    },
    { order: 'lifo' },
  );
  await bus.publish('job.run', { n: 0 });
  await started.opened;
  const keys = ['a', 'b', 'a', '-', 'b', 'a', '-', 'a'];
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    await bus.publish('job.run', { n: i + 1 }, key === '-' ? undefined : { key });
  }
  first.open();
  await bus.idle();

  assert.equal(handled.length, keys.length + 1);
  const groups = byKey(handled);
  assert.deepEqual(groups.a, [1, 3, 6, 8]);
  assert.deepEqual(groups.b, [2, 5]);
  // Unkeyed events still come out last-in first-out.
  assert.deepEqual(groups['-'], [0, 7, 4]);
  await bus.close();
});

test('a priority subscription still keeps publish order among events that share a key', async () => {
  const bus = createBus<Events>();
  const first = gate();
  const started = gate();
  const handled: { key: string; n: number }[] = [];
  bus.subscribe(
    'worker',
    'job.run',
    async (event) => {
      if (event.data.n === 0) {
        started.open();
        await first.opened;
      }
      handled.push({ key: event.partitionkey ?? '-', n: event.data.n });
    },
    { order: 'priority' },
  );
  await bus.publish('job.run', { n: 0 });
  await started.opened;
  // Later events of key "a" carry higher priorities; they must not overtake.
  const plan: [string, number][] = [
    ['a', 0],
    ['b', 1],
    ['a', 9],
    ['-', 5],
    ['b', 8],
    ['a', 10],
    ['-', 7],
  ];
  for (let i = 0; i < plan.length; i++) {
    const [key, priority] = plan[i]!;
    await bus.publish('job.run', { n: i + 1 }, key === '-' ? { priority } : { key, priority });
  }
  first.open();
  await bus.idle();

  assert.equal(handled.length, plan.length + 1);
  const groups = byKey(handled);
  assert.deepEqual(groups.a, [1, 3, 6]);
  assert.deepEqual(groups.b, [2, 5]);
  assert.deepEqual(groups['-'], [0, 7, 4], 'unkeyed events are served by priority');
  await bus.close();
});

test('LIFO and priority subscriptions with concurrency keep each key serial and ordered under load', async () => {
  for (const order of ['lifo', 'priority'] as const) {
    const bus = createBus<Events>();
    const inFlightByKey = new Map<string, number>();
    const seenByKey = new Map<string, number[]>();
    const expectedByKey = new Map<string, number[]>();
    let maxPerKey = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    bus.subscribe(
      'worker',
      'job.run',
      async (event) => {
        const key = event.partitionkey!;
        const mine = (inFlightByKey.get(key) ?? 0) + 1;
        inFlightByKey.set(key, mine);
        maxPerKey = Math.max(maxPerKey, mine);
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        seenByKey.get(key)!.push(event.data.n);
        await jitter();
        inFlight--;
        inFlightByKey.set(key, inFlightByKey.get(key)! - 1);
      },
      { order, concurrency: 4 },
    );
    for (let k = 0; k < 6; k++) {
      seenByKey.set(`k${k}`, []);
      expectedByKey.set(`k${k}`, []);
    }
    for (let n = 0; n < 600; n++) {
      const key = `k${Math.floor(Math.random() * 6)}`;
      expectedByKey.get(key)!.push(n);
      bus.publish('job.run', { n }, { key, priority: Math.floor(Math.random() * 5) });
    }
    await bus.idle();

    assert.equal(maxPerKey, 1, `${order}: two events with the same key ran at once`);
    assert.ok(maxInFlight > 1 && maxInFlight <= 4, `${order}: max in flight ${maxInFlight}`);
    assert.deepEqual(seenByKey, expectedByKey, `${order}: a key's events came out of order`);
    await bus.close();
  }
});
