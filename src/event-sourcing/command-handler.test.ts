import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BusbarError, ConcurrencyError } from '../core/errors.ts';
import { buildEvent } from '../core/event.ts';
import type { AppendToStreamOptions } from '../store/event-store.ts';
import { createMemoryStore, type MemoryStore } from '../store/memory/index.ts';
import { aggregateStream } from './aggregate-stream.ts';
import { type Decider, handleCommand } from './command-handler.ts';

type Events = {
  'cart.item_added': { sku: string; quantity: number };
  'cart.checked_out': { items: number };
};
type Cart = { items: Record<string, number>; checkedOut: boolean };
type Command =
  | { type: 'add'; sku: string; quantity: number }
  | { type: 'checkout' }
  | { type: 'nothing' };

class CartError extends Error {}

const cart: Decider<Cart, Command, Events> = {
  initialState: { items: {}, checkedOut: false },
  evolve: (state, event) => {
    switch (event.type) {
      case 'cart.item_added': {
        const { sku, quantity } = event.data;
        return { ...state, items: { ...state.items, [sku]: (state.items[sku] ?? 0) + quantity } };
      }
      case 'cart.checked_out':
        return { ...state, checkedOut: true };
    }
  },
  decide: (command, state) => {
    if (state.checkedOut) throw new CartError('the cart is checked out');
    switch (command.type) {
      case 'add':
        return { type: 'cart.item_added', data: { sku: command.sku, quantity: command.quantity } };
      case 'checkout': {
        const items = Object.values(state.items).reduce((sum, quantity) => sum + quantity, 0);
        if (items === 0) throw new CartError('the cart is empty');
        return { type: 'cart.checked_out', data: { items } };
      }
      case 'nothing':
        return [];
    }
  },
};

const add = (sku: string, quantity = 1): Command => ({ type: 'add', sku, quantity });

/** Records the expected version of every append. */
function spyOnAppends(store: MemoryStore): AppendToStreamOptions[] {
  const appends: AppendToStreamOptions[] = [];
  const appendToStream = store.appendToStream.bind(store);
  store.appendToStream = (stream, events, options) => {
    appends.push({ ...options });
    return appendToStream(stream, events, options);
  };
  return appends;
}

describe('handleCommand', () => {
  test('appends what decide returns, expecting no_stream for a new stream and the loaded version after', async () => {
    const store = createMemoryStore();
    const appends = spyOnAppends(store);

    const first = await handleCommand(store, 'cart-1', add('apple', 2), cart);
    assert.deepEqual(first.newState, { items: { apple: 2 }, checkedOut: false });
    assert.equal(first.version, 1);
    assert.deepEqual(first.positions, [1]);
    assert.equal(first.newEvents.length, 1);
    assert.equal(first.newEvents[0]!.type, 'cart.item_added');
    assert.deepEqual(first.newEvents[0]!.data, { sku: 'apple', quantity: 2 });
    assert.equal(first.newEvents[0]!.sequence, 1);
    assert.ok(Object.isFrozen(first.newEvents[0]));

    const second = await handleCommand(store, 'cart-1', add('pear'), cart);
    assert.equal(second.version, 2);
    assert.deepEqual(second.newState.items, { apple: 2, pear: 1 });
    assert.deepEqual(appends, [{ expectedVersion: 'no_stream' }, { expectedVersion: 1 }]);

    const stored = await store.readStream('cart-1');
    assert.deepEqual(
      stored.map((logged) => [logged.streamVersion, logged.event.id]),
      [
        [1, first.newEvents[0]!.id],
        [2, second.newEvents[0]!.id],
      ],
    );
  });

  test('appends several events at once and builds them with the given options', async () => {
    const store = createMemoryStore();
    const result = await handleCommand(store, 'cart-1', add('apple'), {
      ...cart,
      source: 'shop',
      decide: () => [
        { type: 'cart.item_added', data: { sku: 'apple', quantity: 1 }, subject: 'cart-1', key: 'cart-1' },
        { type: 'cart.checked_out', data: { items: 1 }, extensions: { tenant: 'acme' } },
      ],
    });
    assert.equal(result.version, 2);
    assert.deepEqual(result.positions, [1, 2]);
    assert.deepEqual(result.newState, { items: { apple: 1 }, checkedOut: true });
    const [first, second] = (await store.readStream('cart-1')).map((logged) => logged.event);
    assert.equal(first!.source, 'shop');
    assert.equal(first!.subject, 'cart-1');
    assert.equal(first!.partitionkey, 'cart-1');
    assert.equal(second!.tenant, 'acme');
    assert.equal(second!.specversion, '1.0');
  });

  test('appends nothing when decide returns no events', async () => {
    const store = createMemoryStore();
    await handleCommand(store, 'cart-1', add('apple'), cart);
    const result = await handleCommand(store, 'cart-1', { type: 'nothing' }, cart);
    assert.deepEqual(result, {
      newState: { items: { apple: 1 }, checkedOut: false },
      newEvents: [],
      version: 1,
      positions: [],
    });
    assert.equal(await store.head(), 1);
  });

  test('lets a domain error from decide propagate and appends nothing', async () => {
    const store = createMemoryStore();
    await assert.rejects(handleCommand(store, 'cart-1', { type: 'checkout' }, cart), CartError);
    assert.equal(await store.streamVersion('cart-1'), 0);
    assert.equal(await store.head(), 0);
  });

  test('reloads and decides again when another writer appends first, and sees its event', async () => {
    const store = createMemoryStore();
    await handleCommand(store, 'cart-1', add('apple'), cart);
    const seen: Cart[] = [];
    let interfered = false;
    const result = await handleCommand(store, 'cart-1', { type: 'checkout' }, {
      ...cart,
      decide: async (command: Command, state) => {
        seen.push(state);
        if (!interfered) {
          interfered = true;
          // Another process adds an item between this load and the append.
          await store.appendToStream('cart-1', [
            buildEvent('cart.item_added', { sku: 'pear', quantity: 3 }, undefined, 'other'),
          ]);
        }
        return cart.decide(command, state);
      },
    });
    assert.deepEqual(
      seen.map((state) => state.items),
      [{ apple: 1 }, { apple: 1, pear: 3 }],
    );
    assert.equal(result.version, 3);
    assert.deepEqual(result.newEvents.map((event) => event.data), [{ items: 4 }]);
    assert.deepEqual(result.newState, { items: { apple: 1, pear: 3 }, checkedOut: true });
    assert.deepEqual(
      (await store.readStream('cart-1')).map((logged) => logged.event.type),
      ['cart.item_added', 'cart.item_added', 'cart.checked_out'],
    );
  });

  test('gives up after `retries` retries and throws the ConcurrencyError with stream, expected and actual', async () => {
    const store = createMemoryStore();
    await handleCommand(store, 'cart-1', add('apple'), cart);
    let attempts = 0;
    const rejected = handleCommand(store, 'cart-1', add('pear'), {
      ...cart,
      retries: 2,
      decide: async (command: Command, state) => {
        attempts++;
        await store.appendToStream('cart-1', [
          buildEvent('cart.item_added', { sku: 'fig', quantity: 1 }, undefined, 'other'),
        ]);
        return cart.decide(command, state);
      },
    });
    await assert.rejects(rejected, (error) => {
      assert.ok(error instanceof ConcurrencyError);
      assert.equal(error.code, 'BUSBAR_ERR_CONCURRENCY');
      assert.equal(error.stream, 'cart-1');
      assert.equal(error.expected, 3);
      assert.equal(error.actual, 4);
      return true;
    });
    assert.equal(attempts, 3);
    // Only the other writer's events were appended.
    const items = (await aggregateStream(store, 'cart-1', cart)).state.items;
    assert.deepEqual(items, { apple: 1, fig: 3 });
  });

  test('does not retry when retries is 0', async () => {
    const store = createMemoryStore();
    let attempts = 0;
    await assert.rejects(
      handleCommand(store, 'cart-1', add('pear'), {
        ...cart,
        retries: 0,
        decide: async (command: Command, state) => {
          attempts++;
          await store.appendToStream('cart-1', [
            buildEvent('cart.item_added', { sku: 'fig', quantity: 1 }, undefined, 'other'),
          ]);
          return cart.decide(command, state);
        },
      }),
      (error) => error instanceof ConcurrencyError && error.expected === 'no_stream' && error.actual === 1,
    );
    assert.equal(attempts, 1);
  });

  test('does not append again an event whose id is already in the stream', async () => {
    const store = createMemoryStore();
    const withId: Decider<Cart, Command, Events> = {
      ...cart,
      decide: () => ({ type: 'cart.item_added', data: { sku: 'apple', quantity: 1 }, id: 'add-1' }),
    };
    const first = await handleCommand(store, 'cart-1', add('apple'), withId);
    const again = await handleCommand(store, 'cart-1', add('apple'), withId);
    assert.deepEqual(again.positions, first.positions);
    assert.equal(again.version, 1);
    assert.deepEqual(again.newState.items, { apple: 1 });
  });

  test('refuses bad arguments with BUSBAR_ERR_INVALID_ARGUMENT and bad topics with BUSBAR_ERR_INVALID_TOPIC', async () => {
    const store = createMemoryStore();
    const fails = (code: string, pattern: RegExp) => (error: unknown) => {
      assert.ok(error instanceof BusbarError);
      assert.equal(error.code, code);
      assert.match(error.message, pattern);
      return true;
    };
    const invalid = (pattern: RegExp) => fails('BUSBAR_ERR_INVALID_ARGUMENT', pattern);
    const { evolve: _evolve, ...withoutEvolve } = cart;
    await assert.rejects(
      // @ts-expect-error evolve is required
      handleCommand(store, 'cart-1', add('a'), withoutEvolve),
      invalid(/"evolve" must be a function/),
    );
    await assert.rejects(
      // @ts-expect-error decide must be a function
      handleCommand(store, 'cart-1', add('a'), { ...cart, decide: 'yes' }),
      invalid(/"decide"/),
    );
    // @ts-expect-error the stream id must be a string
    await assert.rejects(handleCommand(store, 7, add('a'), cart), invalid(/stream id/));
    const withOptions = (options: { retries?: number; source?: string }) =>
      handleCommand(store, 'cart-1', add('a'), { ...cart, ...options });
    await assert.rejects(withOptions({ retries: -1 }), invalid(/"retries"/));
    await assert.rejects(withOptions({ retries: 1.5 }), invalid(/"retries"/));
    await assert.rejects(withOptions({ source: '' }), invalid(/"source"/));
    await assert.rejects(
      // @ts-expect-error decide must return events
      handleCommand(store, 'cart-1', add('a'), { ...cart, decide: () => 'cart.item_added' }),
      invalid(/decide must return \{ type, data \}/),
    );
    await assert.rejects(
      handleCommand(store, 'cart-1', add('a'), {
        ...cart,
        // The compiler lets an unknown key through here (no excess property check on an inferred return).
        decide: () => ({ type: 'cart.item_added', data: { sku: 'a', quantity: 1 }, partitionkey: 'k' }),
      }),
      invalid(/unknown option "partitionkey" \(the partition key is "key"\)/),
    );
    await assert.rejects(
      handleCommand(store, 'cart-1', add('a'), {
        ...cart,
        // @ts-expect-error not a topic of the map, and not a topic at all
        decide: () => ({ type: 'cart..added', data: {} }),
      }),
      fails('BUSBAR_ERR_INVALID_TOPIC', /token 2 is empty/),
    );
    assert.equal(await store.head(), 0);
  });
});
