import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BusbarError } from '../core/errors.ts';
import { buildEvent } from '../core/event.ts';
import type { ReadStreamOptions } from '../store/event-store.ts';
import { createMemoryStore, type MemoryStore } from '../store/memory/index.ts';
import { aggregateStream, type Evolve } from './aggregate-stream.ts';

type Events = {
  'counter.added': { amount: number };
  'counter.reset': null;
};

const evolve: Evolve<number, Events> = (total, event) => {
  switch (event.type) {
    case 'counter.added':
      return total + event.data.amount;
    case 'counter.reset':
      return 0;
  }
};

function added(amount: number) {
  return buildEvent('counter.added', { amount }, undefined, 'test');
}

/** Records the options of every readStream call. */
function spyOnReads(store: MemoryStore): ReadStreamOptions[] {
  const reads: ReadStreamOptions[] = [];
  const readStream = store.readStream.bind(store);
  store.readStream = (stream, options) => {
    reads.push({ ...options });
    return readStream(stream, options);
  };
  return reads;
}

describe('aggregateStream', () => {
  test('folds every event of the stream, oldest first, and reports the last version', async () => {
    const store = createMemoryStore();
    await store.appendToStream('counter-1', [added(5), added(7)]);
    await store.appendToStream('counter-2', [added(100)]);
    await store.appendToStream('counter-1', [buildEvent('counter.reset', null, undefined, 'test'), added(3)]);

    const result = await aggregateStream(store, 'counter-1', { evolve, initialState: 0 });
    assert.deepEqual(result, { state: 3, version: 4 });
  });

  test('gives the initial state and version 0 for a stream with no events', async () => {
    const store = createMemoryStore();
    const initialState = { untouched: true };
    const result = await aggregateStream(store, 'nobody', {
      evolve: () => assert.fail('evolve must not run'),
      initialState,
    });
    assert.equal(result.state, initialState);
    assert.equal(result.version, 0);
  });

  test('reads a stream longer than a page in pages and folds all of it', async () => {
    const store = createMemoryStore();
    const amounts = Array.from({ length: 25 }, (_, i) => i + 1);
    await store.appendToStream('counter-1', amounts.map(added));
    const reads = spyOnReads(store);

    const result = await aggregateStream(store, 'counter-1', { evolve, initialState: 0, pageSize: 10 });
    assert.deepEqual(result, { state: (25 * 26) / 2, version: 25 });
    assert.deepEqual(reads, [
      { from: 1, limit: 10 },
      { from: 11, limit: 10 },
      { from: 21, limit: 10 },
    ]);
  });

  test('reads one more, empty page when the stream is an exact multiple of the page size', async () => {
    const store = createMemoryStore();
    await store.appendToStream('counter-1', [added(1), added(2), added(3), added(4)]);
    const reads = spyOnReads(store);
    const result = await aggregateStream(store, 'counter-1', { evolve, initialState: 0, pageSize: 2 });
    assert.deepEqual(result, { state: 10, version: 4 });
    assert.equal(reads.length, 3);
  });

  test('resumes from a snapshot: folds only the events from `from` on into the given state', async () => {
    const store = createMemoryStore();
    await store.appendToStream('counter-1', [added(1), added(2), added(3), added(4)]);
    const snapshot = { state: 3, version: 2 };
    const result = await aggregateStream(store, 'counter-1', {
      evolve,
      initialState: snapshot.state,
      from: snapshot.version + 1,
    });
    assert.deepEqual(result, { state: 10, version: 4 });

    const upToDate = await aggregateStream(store, 'counter-1', { evolve, initialState: 10, from: 5 });
    assert.deepEqual(upToDate, { state: 10, version: 4 });
  });

  test('refuses a missing evolve, a bad stream id and bad paging options with BUSBAR_ERR_INVALID_ARGUMENT', async () => {
    const store = createMemoryStore();
    const invalid = (pattern: RegExp) => (error: unknown) => {
      assert.ok(error instanceof BusbarError);
      assert.equal(error.code, 'BUSBAR_ERR_INVALID_ARGUMENT');
      assert.match(error.message, pattern);
      return true;
    };
    await assert.rejects(
      // @ts-expect-error evolve is required
      aggregateStream(store, 'counter-1', { initialState: 0 }),
      invalid(/"evolve" must be a function/),
    );
    // @ts-expect-error the stream id must be a string
    await assert.rejects(aggregateStream(store, 42, { evolve, initialState: 0 }), invalid(/stream id/));
    await assert.rejects(aggregateStream(store, '', { evolve, initialState: 0 }), invalid(/stream id/));
    const counter = { evolve, initialState: 0 };
    await assert.rejects(aggregateStream(store, 'c', { ...counter, from: 0 }), invalid(/"from"/));
    await assert.rejects(aggregateStream(store, 'c', { ...counter, pageSize: 0 }), invalid(/"pageSize"/));
    // @ts-expect-error options are required
    await assert.rejects(aggregateStream(store, 'c'), invalid(/evolve, initialState/));
  });
});
