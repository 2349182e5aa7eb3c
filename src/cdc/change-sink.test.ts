import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createBus } from '../core/bus.ts';
import type { BusbarEvent } from '../core/event.ts';
import { createMemoryStore } from '../store/memory/index.ts';
import type { CapturedTransaction, ChangeData } from './change.ts';
import { createChangeSink } from './change-sink.ts';
import { gatedStore, storedChanges } from './cdc-harness.fixture.ts';

const origin = { source: 'postgresql://127.0.0.1:5432/shop', idPrefix: 'pg-1-shop' };

/** A transaction of `ids` rows of table `person` committed at `lsn`. */
function transaction(lsn: string, ids: number[], txid = '700'): CapturedTransaction {
  return {
    position: lsn,
    changes: ids.map((id, index) => ({
      timestamp: '2024-02-29T13:45:00.123456Z',
      schema: 'public',
      table: 'person',
      action: 'INSERT',
      id,
      data: { id },
      old: null,
      changes: null,
      unchanged: [],
      txid,
      lsn,
      index,
      last: index === ids.length - 1,
    })),
  };
}

describe('the change sink', () => {
  test('publishes a transaction contiguously and in order, with ids from its commit position and index', async () => {
    const store = createMemoryStore();
    const bus = createBus({ store });
    const sink = createChangeSink({ origin, bus, handlers: [] });
    await sink.deliver(transaction('0/100', [1, 2, 3]));
    const stored = await storedChanges(store);
    assert.deepEqual(stored.map((event) => event.id), ['pg-1-shop:0/100:0', 'pg-1-shop:0/100:1', 'pg-1-shop:0/100:2']);
    assert.deepEqual(stored.map((event) => event.sequence), [1, 2, 3]);
    assert.deepEqual(stored.map((event) => [event.type, event.subject, event.source]), [
      ['cdc.public.person.insert', '1', origin.source],
      ['cdc.public.person.insert', '2', origin.source],
      ['cdc.public.person.insert', '3', origin.source],
    ]);
    await bus.close();
  });

  test('transactions delivered back to back keep commit order in the log and resolve in call order', async () => {
    const gated = gatedStore();
    const bus = createBus({ store: gated.store });
    const sink = createChangeSink({ origin, bus, handlers: [] });
    const resolved: string[] = [];
    const deliveries = [
      sink.deliver(transaction('0/100', [1, 2])).then(() => resolved.push('0/100')),
      sink.deliver(transaction('0/200', [3])).then(() => resolved.push('0/200')),
      sink.deliver(transaction('0/300', [4, 5, 6])).then(() => resolved.push('0/300')),
    ];
    gated.release();
    await Promise.all(deliveries);
    assert.deepEqual(resolved, ['0/100', '0/200', '0/300']);
    assert.deepEqual((await storedChanges(gated.store)).map((event) => event.data.id), [1, 2, 3, 4, 5, 6]);
    await bus.close();
  });

  test('transactions waiting behind a publish go out together in one append', async () => {
    const gated = gatedStore();
    const bus = createBus({ store: gated.store });
    const sink = createChangeSink({ origin, bus, handlers: [] });
    const deliveries = [sink.deliver(transaction('0/100', [1])), sink.deliver(transaction('0/200', [2])), sink.deliver(transaction('0/300', [3]))];
    gated.release();
    await Promise.all(deliveries);
    assert.equal(gated.appends, 2); // the first alone, then the two that waited
    await bus.close();
  });

  test('a redelivered transaction is stored once', async () => {
    const store = createMemoryStore();
    const bus = createBus({ store });
    await createChangeSink({ origin, bus, handlers: [] }).deliver(transaction('0/100', [1, 2]));
    await createChangeSink({ origin, bus, handlers: [] }).deliver(transaction('0/100', [1, 2]));
    assert.deepEqual((await storedChanges(store)).map((event) => event.id), ['pg-1-shop:0/100:0', 'pg-1-shop:0/100:1']);
    await bus.close();
  });

  test('handlers are awaited in order, after the store committed, before the delivery resolves', async () => {
    const store = createMemoryStore();
    const bus = createBus({ store });
    const calls: string[] = [];
    const sink = createChangeSink({
      origin,
      bus,
      handlers: [
        {
          onEvent: async (event: BusbarEvent<ChangeData>) => {
            assert.ok(await store.getEvent(event.id), 'stored before the handler runs');
            await new Promise((resolve) => setTimeout(resolve, 10 - Number(event.data.id) * 3));
            calls.push(`a${String(event.data.id)}`);
          },
        },
        { onEvent: (event: BusbarEvent<ChangeData>) => void calls.push(`b${String(event.data.id)}`) },
      ],
    });
    await Promise.all([sink.deliver(transaction('0/100', [1, 2])), sink.deliver(transaction('0/200', [3]))]);
    assert.deepEqual(calls, ['a1', 'b1', 'a2', 'b2', 'a3', 'b3']);
    await bus.close();
  });

  test('a failing handler fails its delivery and every later one', async () => {
    const sink = createChangeSink({
      origin,
      handlers: [
        {
          onEvent: (event: BusbarEvent<ChangeData>) => {
            if (event.data.id === 2) throw new Error('handler down');
          },
        },
      ],
    });
    const first = sink.deliver(transaction('0/100', [1]));
    const second = sink.deliver(transaction('0/200', [2]));
    const third = sink.deliver(transaction('0/300', [3]));
    await first;
    await assert.rejects(second, /handler down/);
    await assert.rejects(third, /handler down/);
  });

  test('a failed append fails the delivery and every later one, so no position past it is confirmed', async () => {
    const gated = gatedStore();
    const bus = createBus({ store: gated.store });
    const sink = createChangeSink({ origin, bus, handlers: [] });
    gated.fail(new Error('disk full'));
    const first = sink.deliver(transaction('0/100', [1]));
    const second = sink.deliver(transaction('0/200', [2]));
    gated.release();
    await assert.rejects(first, /disk full/);
    await assert.rejects(second, /disk full/);
    await bus.close();
  });

  test('without a bus only the handlers see the events, and onDelivered reports each transaction', async () => {
    const seen: string[] = [];
    const delivered: number[] = [];
    const sink = createChangeSink({
      origin,
      handlers: [{ onEvent: (event: BusbarEvent<ChangeData>) => void seen.push(event.id) }],
      onDelivered: (events) => delivered.push(events.length),
    });
    await sink.deliver(transaction('0/100', [1, 2]));
    assert.deepEqual(seen, ['pg-1-shop:0/100:0', 'pg-1-shop:0/100:1']);
    assert.deepEqual(delivered, [2]);
  });
});
