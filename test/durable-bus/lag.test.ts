// How far a durable subscription is behind the log, and its checkpoint as the
// low-water mark of what it has finished.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type BusbarError, createBus } from '../../src/index.ts';
import { gate, range, sleep, until } from '../support/async.ts';
import { forEachStore } from './stores.ts';

type Events = { 'order.placed': { n: number }; 'stock.moved': { n: number } };

function isCode(code: string): (error: BusbarError) => boolean {
  return (error) => error.code === code;
}

forEachStore((open) => {
  test('a blocked subscription reports the events behind and the age of the oldest; 0 and 0 once caught up', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    const blocked = gate();
    const handle = bus.subscribe('slow', 'order.*', async () => {
      await blocked.opened;
    });
    await handle.ready;
    for (const n of range(1, 6)) await bus.publish('order.placed', { n });
    await until(() => handle.stats().inFlight === 1);
    await sleep(20);

    const behind = await handle.lag();
    assert.deepEqual({ ...behind, seconds: undefined }, { checkpoint: 0, head: 5, events: 5, seconds: undefined });
    assert.ok(behind.seconds >= 0.015 && behind.seconds < 5, `seconds ${behind.seconds}`);
    const viaBus = await bus.lag('slow');
    assert.deepEqual({ ...viaBus, seconds: undefined }, { checkpoint: 0, head: 5, events: 5, seconds: undefined });
    assert.ok(viaBus.seconds >= behind.seconds, `seconds ${viaBus.seconds}`);

    blocked.open();
    await bus.idle();
    assert.deepEqual(await handle.lag(), { checkpoint: 5, head: 5, events: 0, seconds: 0 });
    assert.deepEqual(await bus.lag('slow'), { checkpoint: 5, head: 5, events: 0, seconds: 0 });
  });

  test('events of other topics committed after a caught-up subscription do not count as lag', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    const handle = bus.subscribe('orders', 'order.*', () => {});
    await handle.ready;
    await bus.publish('order.placed', { n: 1 });
    for (const n of range(2, 5)) await bus.publish('stock.moved', { n });
    await bus.idle();
    assert.deepEqual(await handle.lag(), { checkpoint: 4, head: 4, events: 0, seconds: 0 });
  });

  test('a subscription starting from the beginning lags by the whole log until it has read it', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    for (const n of range(1, 4)) await bus.publish('order.placed', { n });
    const blocked = gate();
    const handle = bus.subscribe('replay', 'order.*', async () => {
      await blocked.opened;
    }, { from: 'beginning' });
    await until(() => handle.stats().inFlight === 1);
    await sleep(5);
    const lag = await handle.lag();
    assert.deepEqual({ ...lag, seconds: undefined }, { checkpoint: 0, head: 3, events: 3, seconds: undefined });
    assert.ok(lag.seconds >= 0.004, `seconds ${lag.seconds}`);
    blocked.open();
    await until(() => handle.stats().completed === 3);
    assert.deepEqual(await handle.lag(), { checkpoint: 3, head: 3, events: 0, seconds: 0 });
  });

  test('with concurrency 4, one slow early event holds the checkpoint back however many later ones finish', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    const slow = gate();
    const finished: number[] = [];
    const handle = bus.subscribe('workers', 'order.*', async (event) => {
      if (event.data.n === 2) await slow.opened;
      finished.push(event.data.n);
    }, { concurrency: 4 });
    await handle.ready;
    for (const n of range(1, 11)) await bus.publish('order.placed', { n });
    await until(() => finished.length === 9);
    assert.deepEqual(finished.toSorted((a, b) => a - b), [1, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.equal((await handle.lag()).checkpoint, 1);
    assert.equal((await handle.lag()).events, 9);

    slow.open();
    await bus.idle();
    assert.deepEqual(await handle.lag(), { checkpoint: 10, head: 10, events: 0, seconds: 0 });
  });

  test('after a crash, a slow early event and everything finished after it are handled again (at-least-once)', async (t) => {
    const log = await open(t);
    const first = log.bus<Events>();
    const slow = gate();
    const finished: number[] = [];
    const handle = first.subscribe('workers', 'order.*', async (event) => {
      if (event.data.n === 3) await slow.opened;
      finished.push(event.data.n);
    }, { concurrency: 4 });
    // Ready first: events committed before the start is found escape the
    // checkpoint (a known bug, see restart.test.ts), which a slow store shows.
    await handle.ready;
    for (const n of range(1, 9)) await first.publish('order.placed', { n });
    await until(() => finished.length === 7);
    await log.restart(20);
    assert.equal(await log.store.loadCheckpoint('workers'), 2);

    const second = log.bus<Events>();
    const again: number[] = [];
    second.subscribe('workers', 'order.*', (event) => {
      again.push(event.data.n);
    });
    await until(() => again.length >= 6);
    await second.idle();
    assert.deepEqual(again, [3, 4, 5, 6, 7, 8]);
    slow.open();
  });

  test('lag of a non-durable subscription rejects; of an unknown one too', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    const handle = bus.subscribe('local', 'order.*', () => {}, { durable: false });
    await assert.rejects(handle.lag(), isCode('BUSBAR_ERR_INVALID_ARGUMENT'));
    await assert.rejects(bus.lag('local'), isCode('BUSBAR_ERR_INVALID_ARGUMENT'));
    await assert.rejects(bus.lag('nobody'), isCode('BUSBAR_ERR_UNKNOWN_SUBSCRIPTION'));
  });
});

test('lag on a bus without a store rejects', async () => {
  const bus = createBus<Events>();
  const handle = bus.subscribe('local', 'order.*', () => {});
  await assert.rejects(handle.lag(), isCode('BUSBAR_ERR_INVALID_ARGUMENT'));
  await assert.rejects(bus.lag('local'), isCode('BUSBAR_ERR_INVALID_ARGUMENT'));
  await bus.close();
});
