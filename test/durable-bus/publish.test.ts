// Publishing on a bus with a store: the receipt comes once the event is
// committed and carries its log position; durable and non-durable recipients
// settle on the same receipt; an event id is logged and handled once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type BusbarEvent, type DeliveryResult } from '../../src/index.ts';
import { range, sleep, until } from '../support/async.ts';
import { forEachStore } from './stores.ts';

type Events = { 'order.placed': { n: number } };

function cloudEvent(id: string, n: number): Record<string, unknown> {
  return { specversion: '1.0', id, type: 'order.placed', source: 'test', data: { n } };
}

/** An event as another process would append it, straight to the store. */
function foreignEvent(id: string, n: number): BusbarEvent {
  return { specversion: '1.0', id, type: 'order.placed', source: 'elsewhere', time: new Date().toISOString(), data: { n } };
}

forEachStore((open) => {
  test('publish resolves once the event is in the log, and the receipt carries its position', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    const receipts = [];
    for (const n of range(1, 4)) {
      const receipt = await bus.publish('order.placed', { n });
      const stored = await log.store.getEvent(receipt.id);
      assert.equal(stored?.position, receipt.sequence);
      assert.deepEqual(stored?.event.data, { n });
      receipts.push(receipt);
    }
    assert.deepEqual(receipts.map((each) => each.sequence), [1, 2, 3]);
    assert.deepEqual(receipts.map((each) => each.event.sequence), [1, 2, 3]);
    assert.equal(await log.head(), 3);
  });

  test('concurrent publishes get consecutive positions in call order, and handlers see them on the event', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    const seen: [number, number | undefined][] = [];
    const handle = bus.subscribe('orders', 'order.*', (event) => {
      seen.push([event.data.n, event.sequence]);
    });
    await handle.ready;
    const receipts = await Promise.all(range(1, 51).map((n) => bus.publish('order.placed', { n })));
    assert.deepEqual(receipts.map((each) => each.sequence), range(1, 51));
    await bus.idle();
    assert.deepEqual(seen, range(1, 51).map((n) => [n, n]));
  });

  test('concurrent publishes made right after subscribing, before the subscription is ready, keep call order too', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    const seen: number[] = [];
    bus.subscribe('orders', 'order.*', (event) => {
      seen.push(event.data.n);
    });
    const receipts = await Promise.all(range(1, 21).map((n) => bus.publish('order.placed', { n }, { key: 'one key' })));
    assert.deepEqual(receipts.map((each) => each.sequence), range(1, 21));
    await bus.idle();
    assert.deepEqual(seen, range(1, 21));
  });

  test('settled() gives the result of every recipient, durable or not', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    const durable = bus.subscribe('durable', 'order.*', async (event) => {
      await sleep(2);
      return `durable ${event.data.n}`;
    });
    bus.subscribe('local', 'order.*', (event) => `local ${event.data.n}`, { durable: false });
    await durable.ready;
    const receipt = await bus.publish('order.placed', { n: 7 });
    assert.deepEqual([...receipt.recipients].sort(), ['durable', 'local']);
    const results = await receipt.settled();
    const byName = (a: DeliveryResult, b: DeliveryResult) => a.subscription.localeCompare(b.subscription);
    assert.deepEqual(results.toSorted(byName), [
      { subscription: 'durable', status: 'completed', value: 'durable 7', attempts: 1 },
      { subscription: 'local', status: 'completed', value: 'local 7', attempts: 1 },
    ]);
  });

  test('a non-durable subscription gets local publishes only; a durable one also what another writer commits', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    const durable: number[] = [];
    const local: number[] = [];
    const handle = bus.subscribe('durable', 'order.*', (event) => {
      durable.push(event.data.n);
    });
    bus.subscribe('local', 'order.*', (event) => {
      local.push(event.data.n);
    }, { durable: false });
    await handle.ready;
    await bus.publish('order.placed', { n: 1 });
    // Another process appending to the same log.
    await (await log.otherWriter()).append([foreignEvent('foreign-1', 2)]);
    await bus.publish('order.placed', { n: 3 });
    await until(() => durable.length >= 3);
    await bus.idle();
    assert.deepEqual(durable, [1, 2, 3]);
    assert.deepEqual(local, [1, 3]);
  });

  test('a durable subscription wakes promptly for what another writer commits, with no publish on its own bus', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    const seen: { n: number; sequence: number | undefined }[] = [];
    const handle = bus.subscribe('durable', 'order.*', (event) => {
      seen.push({ n: event.data.n, sequence: event.sequence });
    });
    await handle.ready;
    // On PostgreSQL a second store instance: nothing commits through this
    // bus's store, so only a notification can wake its parked reader.
    const writer = await log.otherWriter();
    if (log.kind === 'postgres') assert.notEqual(writer, log.store);
    for (const n of [1, 2]) {
      const started = Date.now();
      await writer.append([foreignEvent(`foreign-${n}`, n)]);
      await until(() => seen.length >= n, 1000);
      const waited = Date.now() - started;
      assert.ok(waited < 500, `event ${n} reached the subscription ${waited} ms after its commit`);
    }
    assert.deepEqual(seen, [
      { n: 1, sequence: 1 },
      { n: 2, sequence: 2 },
    ]);
    await until(() => handle.stats().completed === 2);
    assert.deepEqual(await handle.lag(), { checkpoint: 2, head: 2, events: 0, seconds: 0 });
  });

  test('idle() waits until durable subscriptions have handled everything this bus published', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    const handled: Record<string, number[]> = { a: [], b: [] };
    for (const name of ['a', 'b']) {
      bus.subscribe(name, 'order.*', async (event) => {
        await sleep(1);
        handled[name]!.push(event.data.n);
      }, { concurrency: 2 });
    }
    for (const n of range(1, 21)) await bus.publish('order.placed', { n });
    await bus.idle();
    assert.deepEqual(handled.a!.toSorted((x, y) => x - y), range(1, 21));
    assert.deepEqual(handled.b!.toSorted((x, y) => x - y), range(1, 21));
    assert.equal(bus.stats().queue_size, 0);
  });

  test('publishing the same CloudEvent twice logs it once and handles it once', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    const handled: number[] = [];
    const local: number[] = [];
    const handle = bus.subscribe('orders', 'order.*', (event) => {
      handled.push(event.data.n);
    });
    bus.subscribe('local', 'order.*', (event) => {
      local.push(event.data.n);
    }, { durable: false });
    await handle.ready;
    const first = await bus.publishEvent(cloudEvent('order-1', 1));
    await first.settled();
    const second = await bus.publishEvent(cloudEvent('order-1', 1));
    assert.equal(second.sequence, first.sequence);
    assert.deepEqual(await second.settled(), [
      { subscription: 'orders', status: 'skipped', attempts: 0 },
      { subscription: 'local', status: 'completed', value: undefined, attempts: 1 },
    ]);
    await bus.idle();
    assert.deepEqual(handled, [1]);
    // As on a bus without a store: a non-durable subscription gets the duplicate again.
    assert.deepEqual(local, [1, 1]);
    assert.equal(await log.head(), 1);
  });

  test('the same CloudEvent published twice at once is logged and handled once', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    const handled: number[] = [];
    const handle = bus.subscribe('orders', 'order.*', (event) => {
      handled.push(event.data.n);
    });
    await handle.ready;
    const [first, second] = await Promise.all([
      bus.publishEvent(cloudEvent('order-1', 1)),
      bus.publishEvent(cloudEvent('order-1', 1)),
    ]);
    assert.equal(first.sequence, 1);
    assert.equal(second.sequence, 1);
    const statuses = [(await first.settled())[0]!.status, (await second.settled())[0]!.status];
    assert.deepEqual(statuses, ['completed', 'skipped']);
    await bus.idle();
    assert.deepEqual(handled, [1]);
    assert.equal(await log.head(), 1);
  });

  test('a CloudEvent published again after a restart is not logged or handled again', async (t) => {
    const log = await open(t);
    const first = log.bus<Events>();
    const handled: number[] = [];
    first.subscribe('orders', 'order.*', (event) => {
      handled.push(event.data.n);
    });
    await (await first.publishEvent(cloudEvent('order-1', 1))).settled();
    await log.restart();

    const second = log.bus<Events>();
    const handle = second.subscribe('orders', 'order.*', (event) => {
      handled.push(event.data.n);
    });
    await handle.ready;
    const again = await second.publishEvent(cloudEvent('order-1', 1));
    assert.equal(again.sequence, 1);
    await second.idle();
    assert.deepEqual(handled, [1]);
    assert.equal(await log.head(), 1);
  });

  test('a CloudEvent published again right after subscribing, before the subscription is ready, is not handled again', async (t) => {
    const log = await open(t);
    const first = log.bus<Events>();
    const handled: number[] = [];
    first.subscribe('orders', 'order.*', (event) => {
      handled.push(event.data.n);
    });
    await (await first.publishEvent(cloudEvent('order-1', 1))).settled();
    await log.restart();

    const second = log.bus<Events>();
    second.subscribe('orders', 'order.*', (event) => {
      handled.push(event.data.n);
    });
    const again = await second.publishEvent(cloudEvent('order-1', 1));
    await again.settled();
    await second.idle();
    assert.deepEqual(handled, [1]);
    assert.equal(await log.head(), 1);
  });

  test('an old CloudEvent published again right after a new subscription is made does not reach it', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    await bus.publishEvent(cloudEvent('order-1', 1));
    const late: string[] = [];
    // Default `from: 'end'`: only events committed from now on; order-1 was committed before.
    bus.subscribe('late', 'order.*', (event) => {
      late.push(event.id);
    });
    const again = await bus.publishEvent(cloudEvent('order-1', 1));
    assert.deepEqual(await again.settled(), [{ subscription: 'late', status: 'skipped', attempts: 0 }]);
    await bus.idle();
    assert.deepEqual(late, []);
    assert.equal(await log.head(), 1);
  });

  test('publishEvents commits a batch at consecutive positions even while others publish, and handlers see it in order', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    const seen: string[] = [];
    await bus.subscribe('orders', 'order.*', (event) => {
      seen.push(event.id);
    }).ready;
    const others = range(1, 11).map((n) => bus.publish('order.placed', { n }, { id: `other-${n}` }));
    const batch = bus.publishEvents(range(1, 6).map((n) => cloudEvent(`batch-${n}`, n)));
    const more = range(11, 21).map((n) => bus.publish('order.placed', { n }, { id: `other-${n}` }));
    const receipts = await batch;
    await Promise.all([...others, ...more]);
    const positions = receipts.map((each) => each.sequence!);
    assert.deepEqual(positions, range(positions[0]!, positions[0]! + 5));
    await bus.idle();
    const start = seen.indexOf('batch-1');
    assert.deepEqual(seen.slice(start, start + 5), range(1, 6).map((n) => `batch-${n}`));
    assert.equal(seen.length, 25);
  });

  test('concurrent publishEvents and publishEvent calls are logged in call order', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    const calls = [
      bus.publishEvents([cloudEvent('a1', 1), cloudEvent('a2', 2)]),
      bus.publishEvents([cloudEvent('b1', 3)]),
      bus.publishEvent(cloudEvent('c1', 4)).then((receipt) => [receipt]),
      bus.publishEvents([cloudEvent('d1', 5), cloudEvent('d2', 6), cloudEvent('d3', 7)]),
    ];
    const receipts = (await Promise.all(calls)).flat();
    assert.deepEqual(receipts.map((each) => [each.id, each.sequence]), [
      ['a1', 1], ['a2', 2], ['b1', 3], ['c1', 4], ['d1', 5], ['d2', 6], ['d3', 7],
    ]);
  });

  test('publishEvents publishes nothing when one event of the batch is invalid', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    await assert.rejects(
      bus.publishEvents([cloudEvent('good-1', 1), { ...cloudEvent('bad', 2), type: 'not..a.topic' }, cloudEvent('good-3', 3)]),
      { code: 'BUSBAR_ERR_INVALID_TOPIC' },
    );
    assert.equal(await log.head(), 0);
    assert.equal(await log.store.getEvent('good-1'), undefined);
  });

  test('publishEvents of ids already in the log answers with their original positions and logs nothing new', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    const first = await bus.publishEvents([cloudEvent('a', 1), cloudEvent('b', 2)]);
    const again = await bus.publishEvents([cloudEvent('a', 1), cloudEvent('b', 2)]);
    assert.deepEqual(again.map((each) => each.sequence), first.map((each) => each.sequence));
    assert.equal(await log.head(), 2);
  });
});
