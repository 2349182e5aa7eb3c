import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { rejectsWith } from './assertions.ts';
import { event, events, idsOf, positionsOf, twoStreams, versionsIn } from './fixtures.ts';
import type { ContractContext } from './store-under-test.ts';

/** Stream metadata and the events it drops: maxCount, truncateBefore, maxAge. */
export function describeRetention<T>({ fresh }: ContractContext<T>): void {
  describe('retention', () => {
    it('keeps only the newest maxCount events of a stream', async (t) => {
      const store = await fresh(t);
      const { first, second } = await twoStreams(store);
      await store.setStreamMetadata('account-1', { maxCount: 2 });
      assert.deepEqual(await versionsIn(store, 'account-1'), [4, 5]);
      assert.deepEqual(positionsOf((await store.readAll()).events), [2, 5, 6, 7]);
      assert.equal(await store.getEvent(first[0]!.id), undefined);
      assert.equal(await store.getEvent(first[2]!.id), undefined);
      assert.equal((await store.getEvent(first[3]!.id))?.position, 6);
      assert.equal((await store.getEvent(second[0]!.id))?.position, 2);
      assert.equal(await store.streamVersion('account-1'), 5);
      assert.equal(await store.head(), 7);
      await store.appendToStream('account-1', [event()], { expectedVersion: 5 });
      assert.deepEqual(await versionsIn(store, 'account-1'), [5, 6]);
      assert.deepEqual(positionsOf((await store.readAll({ after: 2, limit: 2 })).events), [5, 7]);
    });

    it('drops the versions below truncateBefore', async (t) => {
      const store = await fresh(t);
      const { first } = await twoStreams(store);
      await store.setStreamMetadata('account-1', { truncateBefore: 3 });
      assert.deepEqual(await versionsIn(store, 'account-1'), [3, 4, 5]);
      assert.deepEqual(await versionsIn(store, 'account-1', { direction: 'backward' }), [5, 4, 3]);
      assert.deepEqual(positionsOf((await store.readAll()).events), [2, 4, 5, 6, 7]);
      assert.equal(await store.getEvent(first[1]!.id), undefined);
      assert.equal(await store.streamVersion('account-1'), 5);
      assert.deepEqual(await versionsIn(store, 'account-2'), [1, 2]);
    });

    it('drops events older than maxAge seconds', async (t) => {
      const store = await fresh(t);
      await store.setStreamMetadata('account-1', { maxAge: 1 });
      const old = events(2);
      await store.appendToStream('account-1', old);
      await store.append([event()]);
      await sleep(1100);
      assert.deepEqual(await store.readStream('account-1'), []);
      assert.equal(await store.getEvent(old[0]!.id), undefined);
      assert.deepEqual(positionsOf((await store.readAll()).events), [3]);
      const recent = event();
      await store.appendToStream('account-1', [recent], { expectedVersion: 2 });
      assert.deepEqual(idsOf(await store.readStream('account-1')), [recent.id]);
      assert.deepEqual(positionsOf((await store.readAll()).events), [3, 4]);
      assert.equal(await store.getEvent(old[1]!.id), undefined);
      assert.equal(await store.streamVersion('account-1'), 3);
    });

    it('round-trips stream metadata and reads none for a stream without it', async (t) => {
      const store = await fresh(t);
      assert.deepEqual(await store.streamMetadata('account-1'), {});
      const metadata = { maxCount: 100, maxAge: 86_400, truncateBefore: 3 };
      await store.setStreamMetadata('account-1', metadata);
      assert.deepEqual(await store.streamMetadata('account-1'), metadata);
      assert.deepEqual(await store.streamMetadata('account-2'), {});
      assert.equal(await store.streamVersion('account-1'), 0);
    });

    it('rejects a negative or fractional bound with BUSBAR_ERR_INVALID_ARGUMENT', async (t) => {
      const store = await fresh(t);
      await rejectsWith(
        () => store.setStreamMetadata('account-1', { maxCount: -1 }),
        'BUSBAR_ERR_INVALID_ARGUMENT',
      );
      await rejectsWith(
        () => store.setStreamMetadata('account-1', { maxAge: 0.5 }),
        'BUSBAR_ERR_INVALID_ARGUMENT',
      );
      assert.deepEqual(await store.streamMetadata('account-1'), {});
    });
  });
}
