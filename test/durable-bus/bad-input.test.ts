// Bad input on a bus with a store fails with a clear error before anything is
// committed: the log head does not move, nobody is handed anything, and the
// next good publish takes the next position.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { type Bus, BusbarError, createBus, type ErrorCode } from '../../src/index.ts';
import type { EventStore } from '../../src/store/event-store.ts';
import { gate } from '../support/async.ts';
import { type DurableFixture, forEachStore } from './stores.ts';

type Events = { 'order.placed': { n: number } };

interface Case {
  name: string;
  code: ErrorCode;
  publish: (bus: Bus<Events>) => Promise<unknown>;
}

const cases: Case[] = [
  { name: 'an invalid topic', code: 'BUSBAR_ERR_INVALID_TOPIC', publish: (bus) => bus.publish('order..placed' as never, { n: 1 } as never) },
  { name: 'data that fails the topic schema', code: 'BUSBAR_ERR_VALIDATION', publish: (bus) => bus.publish('order.placed', { n: 'one' } as never) },
  {
    name: 'a CloudEvent whose data fails the topic schema',
    code: 'BUSBAR_ERR_VALIDATION',
    publish: (bus) => bus.publishEvent({ specversion: '1.0', id: 'e-1', type: 'order.placed', source: 'test', data: { n: 'one' } }),
  },
  { name: 'an invalid CloudEvent', code: 'BUSBAR_ERR_INVALID_EVENT', publish: (bus) => bus.publishEvent({ specversion: '0.3', type: 'order.placed' }) },
  { name: '`to` an unknown subscription', code: 'BUSBAR_ERR_UNKNOWN_SUBSCRIPTION', publish: (bus) => bus.publish('order.placed', { n: 1 }, { to: ['orders', 'nobody'] }) },
  { name: '`to` that is not an array', code: 'BUSBAR_ERR_INVALID_ARGUMENT', publish: (bus) => bus.publish('order.placed', { n: 1 }, { to: 'orders' as never }) },
  { name: 'a negative ttl', code: 'BUSBAR_ERR_INVALID_ARGUMENT', publish: (bus) => bus.publish('order.placed', { n: 1 }, { ttl: -1 }) },
  {
    name: 'a `sequence` extension',
    code: 'BUSBAR_ERR_INVALID_ARGUMENT',
    publish: (bus) => bus.publish('order.placed', { n: 1 }, { extensions: { sequence: 7 } }),
  },
];

async function openWithHistory(log: DurableFixture) {
  const bus = log.bus<Events>();
  bus.registerTopic('order.placed', { schema: z.object({ n: z.number() }) });
  const handled: number[] = [];
  const handle = bus.subscribe('orders', 'order.*', (event) => {
    handled.push(event.data.n);
  });
  await handle.ready;
  await bus.publish('order.placed', { n: 0 });
  await bus.idle();
  return { bus, handled };
}

forEachStore((open) => {
  for (const each of cases) {
    test(`${each.name} is refused with ${each.code} and commits nothing`, async (t) => {
      const log = await open(t);
      const { bus, handled } = await openWithHistory(log);
      await assert.rejects(each.publish(bus), (error: BusbarError) => {
        assert.equal(error.code, each.code, error.message);
        return true;
      });
      assert.equal(await log.head(), 1);
      const next = await bus.publish('order.placed', { n: 2 });
      assert.equal(next.sequence, 2);
      await bus.idle();
      assert.deepEqual(handled, [0, 2]);
    });
  }

  test('an unregistered topic on a strict bus is refused and commits nothing', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events & { 'other.topic': unknown }>({ strict: true });
    await assert.rejects(bus.publish('other.topic', {}), (error: BusbarError) => error.code === 'BUSBAR_ERR_UNKNOWN_TOPIC');
    assert.equal(await log.head(), 0);
  });

  test('a full non-durable subscriber with overflow "reject" refuses the publish before the commit', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    const blocked = gate();
    const handle = bus.subscribe('local', 'order.*', () => blocked.opened, { durable: false, queueLimit: 1, overflow: 'reject' });
    await bus.publish('order.placed', { n: 1 }); // running
    await bus.publish('order.placed', { n: 2 }); // queued: the queue is full
    await assert.rejects(bus.publish('order.placed', { n: 3 }), (error: BusbarError) => error.code === 'BUSBAR_ERR_OVERLOAD');
    assert.equal(await log.head(), 2);
    assert.equal(handle.stats().pending, 1);
    blocked.open();
    await bus.idle();
    assert.equal(handle.stats().completed, 2);
  });

  test('a failed commit rejects the publish, and no subscription, durable or not, receives the event', async (t) => {
    const log = await open(t);
    let failing = true;
    const store = new Proxy(log.store, {
      get(target, key) {
        if (key === 'append' && failing) return () => Promise.reject(new BusbarError('BUSBAR_ERR_STORE_UNAVAILABLE', 'disk full'));
        const value = Reflect.get(target, key);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as EventStore;
    const bus = createBus<Events>({ store });
    try {
      const handled: string[] = [];
      const durable = bus.subscribe('durable', 'order.*', (event) => {
        handled.push(`durable ${event.data.n}`);
      });
      bus.subscribe('local', 'order.*', (event) => {
        handled.push(`local ${event.data.n}`);
      }, { durable: false });
      await durable.ready;
      await assert.rejects(bus.publish('order.placed', { n: 1 }), (error: BusbarError) => error.code === 'BUSBAR_ERR_STORE_UNAVAILABLE');
      failing = false;
      const next = await bus.publish('order.placed', { n: 2 });
      await bus.idle();
      assert.equal(next.sequence, 1);
      assert.deepEqual(handled.toSorted(), ['durable 2', 'local 2']);
      assert.equal(await log.head(), 1);
    } finally {
      await bus.close();
    }
  });

  test('a publish on a closed bus is refused and commits nothing', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    await bus.close();
    await assert.rejects(bus.publish('order.placed', { n: 1 }), (error: BusbarError) => error.code === 'BUSBAR_ERR_CLOSED');
    assert.equal(await log.head(), 0);
  });
});
