import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertConcurrencyError, rejectsWith } from './assertions.ts';
import { event, events, twoStreams } from './fixtures.ts';
import type { ContractContext } from './store-under-test.ts';

/** Optimistic concurrency on a stream: any, no_stream, exists and exact versions. */
export function describeExpectedVersions<T>({ fresh }: ContractContext<T>): void {
  describe('expected versions', () => {
    it('appends with any whatever the stream holds', async (t) => {
      const store = await fresh(t);
      const any = { expectedVersion: 'any' } as const;
      assert.deepEqual(await store.appendToStream('account-1', [event()], any), { positions: [1], version: 1 });
      assert.deepEqual(await store.appendToStream('account-1', [event()], any), { positions: [2], version: 2 });
      assert.deepEqual(await store.appendToStream('account-1', [event()]), { positions: [3], version: 3 });
    });

    it('appends with no_stream to a new stream and returns its version', async (t) => {
      const store = await fresh(t);
      const result = await store.appendToStream('account-1', events(3), { expectedVersion: 'no_stream' });
      assert.deepEqual(result, { positions: [1, 2, 3], version: 3 });
    });

    it('refuses no_stream on an existing stream with a ConcurrencyError and appends nothing', async (t) => {
      const store = await fresh(t);
      await store.appendToStream('account-1', [event()]);
      const error = await rejectsWith(
        () => store.appendToStream('account-1', events(2), { expectedVersion: 'no_stream' }),
        'BUSBAR_ERR_CONCURRENCY',
      );
      assertConcurrencyError(error, 'account-1', 'no_stream', 1);
      assert.equal(await store.head(), 1);
      assert.equal(await store.streamVersion('account-1'), 1);
    });

    it('refuses exists on a new stream and appends to an existing one', async (t) => {
      const store = await fresh(t);
      const exists = { expectedVersion: 'exists' } as const;
      const error = await rejectsWith(
        () => store.appendToStream('account-1', [event()], exists),
        'BUSBAR_ERR_CONCURRENCY',
      );
      assertConcurrencyError(error, 'account-1', 'exists', 0);
      assert.equal(await store.head(), 0);
      assert.deepEqual(await store.readStream('account-1'), []);
      await store.appendToStream('account-1', [event()]);
      const result = await store.appendToStream('account-1', [event()], exists);
      assert.deepEqual(result, { positions: [2], version: 2 });
    });

    it('appends when the stream is at the exact version expected', async (t) => {
      const store = await fresh(t);
      await store.appendToStream('account-1', events(2));
      const result = await store.appendToStream('account-1', events(2), { expectedVersion: 2 });
      assert.deepEqual(result, { positions: [3, 4], version: 4 });
    });

    it('refuses another exact version with the stream, expected and actual versions, appending none of the batch', async (t) => {
      const store = await fresh(t);
      await store.appendToStream('account-1', events(2));
      const behind = await rejectsWith(
        () => store.appendToStream('account-1', events(3), { expectedVersion: 1 }),
        'BUSBAR_ERR_CONCURRENCY',
      );
      assertConcurrencyError(behind, 'account-1', 1, 2);
      assert.equal(await store.head(), 2);
      assert.equal(await store.streamVersion('account-1'), 2);
      const ahead = await rejectsWith(
        () => store.appendToStream('account-1', [event()], { expectedVersion: 5 }),
        'BUSBAR_ERR_CONCURRENCY',
      );
      assertConcurrencyError(ahead, 'account-1', 5, 2);
    });

    it('treats version 0 as a stream with no events', async (t) => {
      const store = await fresh(t);
      const zero = { expectedVersion: 0 };
      assert.deepEqual(await store.appendToStream('account-1', [event()], zero), { positions: [1], version: 1 });
      const error = await rejectsWith(
        () => store.appendToStream('account-1', [event()], zero),
        'BUSBAR_ERR_CONCURRENCY',
      );
      assertConcurrencyError(error, 'account-1', 0, 1);
    });

    it('counts versions per stream', async (t) => {
      const store = await fresh(t);
      await twoStreams(store);
      assert.equal(await store.streamVersion('account-1'), 5);
      assert.equal(await store.streamVersion('account-2'), 2);
      const result = await store.appendToStream('account-2', [event()], { expectedVersion: 2 });
      assert.deepEqual(result, { positions: [8], version: 3 });
    });

    it('rejects an invalid expectedVersion with BUSBAR_ERR_INVALID_ARGUMENT and appends nothing', async (t) => {
      const store = await fresh(t);
      for (const invalid of [-1, 'latest', 1.5, Number.NaN]) {
        await rejectsWith(
          () => store.appendToStream('account-1', [event()], { expectedVersion: invalid as never }),
          'BUSBAR_ERR_INVALID_ARGUMENT',
          `expectedVersion ${String(invalid)}`,
        );
      }
      assert.equal(await store.head(), 0);
      assert.equal(await store.streamVersion('account-1'), 0);
    });
  });
}
