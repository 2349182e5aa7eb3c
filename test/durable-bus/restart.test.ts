// A durable subscription resumes from the checkpoint kept under its name:
// after a restart, or an unsubscribe and a new subscribe, it gets exactly the
// committed events it had not finished, in order.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createBus } from '../../src/index.ts';
import type { EventStore } from '../../src/store/event-store.ts';
import { gate, range, sleep, until } from '../support/async.ts';
import { forEachStore } from './stores.ts';

type Events = { 'order.placed': { n: number }; 'stock.moved': { n: number } };

forEachStore((open) => {
  test('after a clean restart a subscription gets only the events committed since, not the ones it handled', async (t) => {
    const log = await open(t);
    const first = log.bus<Events>();
    const seenBefore: number[] = [];
    first.subscribe('billing', 'order.*', (event) => {
      seenBefore.push(event.data.n);
    });
    for (const n of range(1, 6)) await first.publish('order.placed', { n });
    await first.idle();
    assert.deepEqual(seenBefore, [1, 2, 3, 4, 5]);

    await log.restart();
    // Nobody subscribed to "billing" here: the events wait in the log.
    const publisher = log.bus<Events>();
    for (const n of range(6, 9)) await publisher.publish('order.placed', { n });

    await log.restart();
    const second = log.bus<Events>();
    const seenAfter: { n: number; sequence: number | undefined }[] = [];
    second.subscribe('billing', 'order.*', (event) => {
      seenAfter.push({ n: event.data.n, sequence: event.sequence });
    });
    await until(() => seenAfter.length >= 3);
    await second.idle();
    assert.deepEqual(seenAfter, [
      { n: 6, sequence: 6 },
      { n: 7, sequence: 7 },
      { n: 8, sequence: 8 },
    ]);
    await second.unsubscribe('billing');
    assert.equal(await log.store.loadCheckpoint('billing'), 8);
  });

  test('after a crash a subscription gets the events it had not finished, in order, and not the ones it had', async (t) => {
    const log = await open(t);
    const first = log.bus<Events>();
    const stuck = gate();
    const finished: number[] = [];
    const handle = first.subscribe('billing', 'order.*', async (event) => {
      if (event.data.n === 3) await stuck.opened;
      finished.push(event.data.n);
    });
    // Ready first: events committed before the start is found escape the
    // checkpoint (the known bug of the last test), which a slow store shows.
    await handle.ready;
    for (const n of range(1, 7)) await first.publish('order.placed', { n });
    await until(() => first.stats().subscriptions[0]!.inFlight === 1 && finished.length === 2);

    // The handler of event 3 never returns: the close gives up on it.
    await log.restart(20);
    assert.deepEqual(finished, [1, 2]);
    assert.equal(await log.store.loadCheckpoint('billing'), 2);

    const second = log.bus<Events>();
    const redelivered: number[] = [];
    second.subscribe('billing', 'order.*', (event) => {
      redelivered.push(event.data.n);
    });
    await until(() => redelivered.length >= 4);
    await second.idle();
    assert.deepEqual(redelivered, [3, 4, 5, 6]);
    assert.equal((await second.lag('billing')).checkpoint, 6);
    stuck.open();
  });

  test('each subscription resumes from its own checkpoint', async (t) => {
    const log = await open(t);
    const first = log.bus<Events>();
    const fast = first.subscribe('fast', 'order.*', () => {});
    const slowGate = gate();
    const slow = first.subscribe('slow', 'order.*', async (event) => {
      if (event.data.n === 2) await slowGate.opened;
    });
    // Ready first, as above.
    await Promise.all([fast.ready, slow.ready]);
    for (const n of range(1, 5)) await first.publish('order.placed', { n });
    await until(() => first.stats().subscriptions.find((each) => each.name === 'fast')!.completed === 4);
    await log.restart(20);

    const second = log.bus<Events>();
    const got: Record<string, number[]> = { fast: [], slow: [] };
    second.subscribe('fast', 'order.*', (event) => {
      got.fast!.push(event.data.n);
    });
    second.subscribe('slow', 'order.*', (event) => {
      got.slow!.push(event.data.n);
    });
    await second.publish('order.placed', { n: 5 });
    await second.idle();
    assert.deepEqual(got, { fast: [5], slow: [2, 3, 4, 5] });
    slowGate.open();
  });

  test('unsubscribing and subscribing again with the same name resumes from the checkpoint', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    const firstRun: number[] = [];
    const handle = bus.subscribe('billing', 'order.*', (event) => {
      firstRun.push(event.data.n);
    });
    await handle.ready;
    for (const n of range(1, 4)) await bus.publish('order.placed', { n });
    await bus.idle();
    await handle.unsubscribe();

    // Published with nobody subscribed: the receipt has no recipients.
    const receipts = [];
    for (const n of range(4, 7)) receipts.push(await bus.publish('order.placed', { n }));
    assert.deepEqual(receipts.map((each) => each.recipients), [[], [], []]);

    const secondRun: number[] = [];
    // `from` only applies when there is no checkpoint: this one is ignored.
    bus.subscribe('billing', 'order.*', (event) => {
      secondRun.push(event.data.n);
    }, { from: 'end' });
    await until(() => secondRun.length >= 3);
    await bus.idle();
    assert.deepEqual(firstRun, [1, 2, 3]);
    assert.deepEqual(secondRun, [4, 5, 6]);
  });

  test('a start position computed from "end" is kept, so events committed while unsubscribed are not skipped', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    await bus.publish('order.placed', { n: 0 });
    const handle = bus.subscribe('billing', 'order.*', () => {});
    await handle.ready;
    await handle.unsubscribe();
    assert.equal(await log.store.loadCheckpoint('billing'), 1);

    for (const n of range(1, 3)) await bus.publish('order.placed', { n });
    await log.restart();
    const again = log.bus<Events>();
    const seen: number[] = [];
    again.subscribe('billing', 'order.*', (event) => {
      seen.push(event.data.n);
    });
    await until(() => seen.length >= 2);
    await again.idle();
    assert.deepEqual(seen, [1, 2]);
  });

  test('the checkpoint passes over events of topics the subscription does not match', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    const seen: number[] = [];
    bus.subscribe('billing', 'order.*', (event) => {
      seen.push(event.data.n);
    });
    await bus.publish('order.placed', { n: 1 });
    for (const n of range(2, 6)) await bus.publish('stock.moved', { n });
    await bus.idle();
    await until(() => seen.length === 1);
    await bus.unsubscribe('billing');
    assert.equal(await log.store.loadCheckpoint('billing'), 5);

    await log.restart();
    const again = log.bus<Events>();
    const after: number[] = [];
    again.subscribe('billing', 'order.*', (event) => {
      after.push(event.data.n);
    });
    await again.publish('order.placed', { n: 6 });
    await again.idle();
    assert.deepEqual(seen, [1]);
    assert.deepEqual(after, [6]);
  });

  test('a non-durable subscription gets nothing from before it subscribed, even after a restart', async (t) => {
    const log = await open(t);
    const first = log.bus<Events>();
    for (const n of range(1, 4)) await first.publish('order.placed', { n });
    await log.restart();

    const second = log.bus<Events>();
    const seen: number[] = [];
    second.subscribe('live', 'order.*', (event) => {
      seen.push(event.data.n);
    }, { durable: false, from: 'beginning' });
    await second.publish('order.placed', { n: 4 });
    await second.idle();
    assert.deepEqual(seen, [4]);
    assert.equal(await log.store.loadCheckpoint('live'), undefined);
  });

  test('events committed while a subscription is still finding its start are handled again after a crash if unfinished', async (t) => {
    const log = await open(t);
    // Loading the checkpoint takes a while, as on a busy database: the
    // publishes below commit before the subscription has found its start.
    const slowStart = new Proxy(log.store, {
      get(target, key) {
        if (key === 'loadCheckpoint') {
          return async (name: string) => {
            await sleep(50);
            return target.loadCheckpoint(name);
          };
        }
        const value = Reflect.get(target, key);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as EventStore;
    const first = createBus<Events>({ store: slowStart });
    const stuck = gate();
    try {
      const finished: number[] = [];
      const handle = first.subscribe('billing', 'order.*', async (event) => {
        if (event.data.n === 3) await stuck.opened;
        finished.push(event.data.n);
      });
      const receipts = [];
      for (const n of range(1, 5)) receipts.push(await first.publish('order.placed', { n }));
      assert.deepEqual(receipts.map((each) => each.recipients), [['billing'], ['billing'], ['billing'], ['billing']]);
      await handle.ready;
      await until(() => handle.stats().inFlight === 1 && finished.length === 2);
    } finally {
      // The handler of event 3 never returns: the close gives up on it.
      await first.close({ deadline: 20 });
    }
    await log.restart();
    assert.equal(await log.store.loadCheckpoint('billing'), 2);

    const second = log.bus<Events>();
    const redelivered: number[] = [];
    second.subscribe('billing', 'order.*', (event) => {
      redelivered.push(event.data.n);
    });
    await until(() => redelivered.length >= 2);
    await second.idle();
    assert.deepEqual(redelivered, [3, 4]);
    stuck.open();
  });
});
