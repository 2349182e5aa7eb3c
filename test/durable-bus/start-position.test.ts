// Where a durable subscription starts when no checkpoint is stored under its
// name: the `from` option.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Bus, type BusbarError } from '../../src/index.ts';
import { range, sleep, until } from '../support/async.ts';
import { forEachStore } from './stores.ts';

type Events = { 'order.placed': { n: number } };

/** Publishes n = from..to-1, one commit after the other. */
async function publishAll(bus: Bus<Events>, from: number, to: number): Promise<void> {
  for (const n of range(from, to)) await bus.publish('order.placed', { n });
}

forEachStore((open) => {
  test('from "beginning" delivers the whole history, then what comes next', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    await publishAll(bus, 1, 4);
    const seen: number[] = [];
    const handle = bus.subscribe('replay', 'order.*', (event) => {
      seen.push(event.data.n);
    }, { from: 'beginning' });
    await handle.ready;
    await bus.publish('order.placed', { n: 4 });
    await until(() => seen.length >= 4);
    await bus.idle();
    assert.deepEqual(seen, [1, 2, 3, 4]);
  });

  test('by default ("end") only events committed after subscribing are delivered', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    await publishAll(bus, 1, 4);
    const seen: number[] = [];
    const handle = bus.subscribe('live', 'order.*', (event) => {
      seen.push(event.data.n);
    });
    await handle.ready;
    const receipt = await bus.publish('order.placed', { n: 4 });
    await bus.idle();
    assert.deepEqual(seen, [4]);
    assert.deepEqual(receipt.recipients, ['live']);
    assert.deepEqual((await receipt.settled()).map((each) => each.status), ['completed']);
  });

  test('a subscription made just before a publish, without waiting for it to be ready, gets that event', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    await publishAll(bus, 1, 3);
    const seen: number[] = [];
    bus.subscribe('live', 'order.*', (event) => {
      seen.push(event.data.n);
    });
    const receipt = await bus.publish('order.placed', { n: 3 });
    assert.deepEqual(await receipt.settled(), [{ subscription: 'live', status: 'completed', value: undefined, attempts: 1 }]);
    await bus.idle();
    assert.deepEqual(seen, [3]);
  });

  test('from a position delivers the events after it', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    await publishAll(bus, 1, 6);
    const seen: { n: number; sequence: number | undefined }[] = [];
    bus.subscribe('tail', 'order.*', (event) => {
      seen.push({ n: event.data.n, sequence: event.sequence });
    }, { from: { position: 3 } });
    await until(() => seen.length >= 2);
    await bus.idle();
    assert.deepEqual(seen, [
      { n: 4, sequence: 4 },
      { n: 5, sequence: 5 },
    ]);
  });

  test('from a position beyond the head waits for the log to get there', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    await publishAll(bus, 1, 3);
    const seen: number[] = [];
    const handle = bus.subscribe('later', 'order.*', (event) => {
      seen.push(event.data.n);
    }, { from: { position: 4 } });
    await handle.ready;
    await publishAll(bus, 3, 7);
    await bus.idle();
    assert.deepEqual(seen, [5, 6]);
  });

  test('from a time delivers the events recorded from then on', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    await publishAll(bus, 1, 4);
    await sleep(5);
    const since = new Date();
    await sleep(5);
    await publishAll(bus, 4, 6);
    const seen: number[] = [];
    bus.subscribe('since', 'order.*', (event) => {
      seen.push(event.data.n);
    }, { from: { time: since } });
    await until(() => seen.length >= 2);
    await bus.idle();
    assert.deepEqual(seen, [4, 5]);
  });

  test('from a time before the first event delivers everything; from a time in the future, only what comes next', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    await publishAll(bus, 1, 3);
    const all: number[] = [];
    const future: number[] = [];
    const a = bus.subscribe('all', 'order.*', (event) => {
      all.push(event.data.n);
    }, { from: { time: new Date(0) } });
    const b = bus.subscribe('future', 'order.*', (event) => {
      future.push(event.data.n);
    }, { from: { time: new Date(Date.now() + 3_600_000) } });
    await Promise.all([a.ready, b.ready]);
    await bus.publish('order.placed', { n: 3 });
    await until(() => all.length >= 3);
    await bus.idle();
    assert.deepEqual(all, [1, 2, 3]);
    assert.deepEqual(future, [3]);
  });

  test('an existing checkpoint wins over `from`', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    bus.subscribe('billing', 'order.*', () => {});
    await publishAll(bus, 1, 4);
    await bus.idle();
    await log.restart();

    const again = log.bus<Events>();
    const seen: number[] = [];
    again.subscribe('billing', 'order.*', (event) => {
      seen.push(event.data.n);
    }, { from: 'beginning' });
    await again.publish('order.placed', { n: 4 });
    await again.idle();
    assert.deepEqual(seen, [4]);
  });

  // Today none of these throws: "middle" leaves `ready` pending forever, the
  // bad positions make every read of the log fail (retried each second),
  // and an invalid Date starts from the beginning.
  test('an invalid `from` is refused when subscribing', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>({ onError: () => {} });
    await bus.publish('order.placed', { n: 1 });
    const invalid: [string, unknown][] = [
      ['"middle"', 'middle'],
      ['{ position: -1 }', { position: -1 }],
      ['{ position: 1.5 }', { position: 1.5 }],
      ['{ time: Invalid Date }', { time: new Date(Number.NaN) }],
    ];
    const accepted: string[] = [];
    for (const [index, [label, from]] of invalid.entries()) {
      try {
        bus.subscribe(`bad-${index}`, 'order.*', () => {}, { from: from as never });
        accepted.push(label);
      } catch (error) {
        assert.equal((error as BusbarError).code, 'BUSBAR_ERR_INVALID_ARGUMENT', label);
      }
    }
    assert.deepEqual(accepted, []);
  });
});
