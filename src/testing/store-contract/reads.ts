import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { rejectsWith } from './assertions.ts';
import { event, events, idsOf, positionsOf, twoStreams, versionsIn, versionsOf } from './fixtures.ts';
import type { ContractContext } from './store-under-test.ts';

/** Reading the whole log, one stream, and the position at a time. */
export function describeReads<T>({ fresh }: ContractContext<T>): void {
  describe('readAll', () => {
    it('reads an empty log as an empty page', async (t) => {
      const store = await fresh(t);
      assert.deepEqual(await store.readAll(), { events: [], last: 0 });
    });

    it('reads every event from the start in position order', async (t) => {
      const store = await fresh(t);
      const written = events(5);
      await store.append(written.slice(0, 2));
      await store.appendToStream('account-1', written.slice(2));
      const page = await store.readAll();
      assert.deepEqual(positionsOf(page.events), [1, 2, 3, 4, 5]);
      assert.deepEqual(idsOf(page.events), written.map((e) => e.id));
      assert.equal(page.last, 5);
    });

    it('reads only the events after a position', async (t) => {
      const store = await fresh(t);
      await store.append(events(5));
      const page = await store.readAll({ after: 2 });
      assert.deepEqual(positionsOf(page.events), [3, 4, 5]);
      assert.equal(page.last, 5);
      assert.deepEqual(await store.readAll({ after: 5 }), { events: [], last: 5 });
    });

    it('pages through everything with limit, using last as the cursor', async (t) => {
      const store = await fresh(t);
      await store.append(events(7));
      const pages: number[][] = [];
      const lasts: number[] = [];
      let after = 0;
      for (let i = 0; i < 4; i++) {
        const page = await store.readAll({ after, limit: 3 });
        pages.push(positionsOf(page.events));
        lasts.push(page.last);
        after = page.last;
      }
      assert.deepEqual(pages, [[1, 2, 3], [4, 5, 6], [7], []]);
      assert.deepEqual(lasts, [3, 6, 7, 7]);
    });

    it('filters by exact topics and by * and > wildcards', async (t) => {
      const store = await fresh(t);
      const topics = ['orders.created', 'orders.shipped', 'payments.received', 'orders.eu.created', 'orders'];
      await store.append(topics.map((topic) => event(topic)));
      const matching = async (patterns: string[]): Promise<number[]> =>
        positionsOf((await store.readAll({ topics: patterns })).events);
      assert.deepEqual(await matching(['orders.created']), [1]);
      assert.deepEqual(await matching(['orders.*']), [1, 2]);
      assert.deepEqual(await matching(['orders.>']), [1, 2, 4]);
      assert.deepEqual(await matching(['*.created']), [1]);
      assert.deepEqual(await matching(['payments.received', 'orders.shipped']), [2, 3]);
      assert.deepEqual(await matching(['orders.*.created', 'orders']), [4, 5]);
    });

    it('advances last past the events a topic filter skips', async (t) => {
      const store = await fresh(t);
      const topics = ['orders.created', 'payments.received', 'payments.received', 'orders.created', 'payments.refunded'];
      await store.append(topics.map((topic) => event(topic)));
      assert.deepEqual(await store.readAll({ topics: ['shipping.>'] }), { events: [], last: 5 });
      const whole = await store.readAll({ topics: ['orders.created'] });
      assert.deepEqual([positionsOf(whole.events), whole.last], [[1, 4], 5]);
      const seen: number[] = [];
      let after = 0;
      for (let i = 0; i < 3; i++) {
        const page = await store.readAll({ after, topics: ['orders.created'], limit: 1 });
        assert.ok(page.last >= after, `last ${page.last} does not go back from ${after}`);
        seen.push(...positionsOf(page.events));
        after = page.last;
      }
      assert.deepEqual(seen, [1, 4]);
      assert.equal(after, 5);
    });

    it('returns events with recipients whatever the topic filter, with their recipients', async (t) => {
      const store = await fresh(t);
      await store.append([event('audit.logged')], { recipients: ['auditor'] });
      await store.append([event('system.notice')], { recipients: 'all' });
      await store.append([event('orders.created'), event('payments.received')]);
      const { events: read } = await store.readAll({ topics: ['orders.created'] });
      assert.deepEqual(positionsOf(read), [1, 2, 3]);
      assert.deepEqual(read.map((row) => row.recipients), [['auditor'], 'all', undefined]);
      assert.deepEqual((await store.getEvent(read[0]!.event.id))?.recipients, ['auditor']);
    });

    it('rejects an invalid pattern with BUSBAR_ERR_INVALID_PATTERN', async (t) => {
      const store = await fresh(t);
      await store.append([event()]);
      for (const pattern of ['orders..created', 'orders.>.eu', '', 'orders.cre ated']) {
        await rejectsWith(
          () => store.readAll({ topics: [pattern] }),
          'BUSBAR_ERR_INVALID_PATTERN',
          `pattern ${JSON.stringify(pattern)}`,
        );
      }
    });

    it('rejects a negative or fractional after or limit with BUSBAR_ERR_INVALID_ARGUMENT', async (t) => {
      const store = await fresh(t);
      await rejectsWith(() => store.readAll({ after: -1 }), 'BUSBAR_ERR_INVALID_ARGUMENT', 'after -1');
      await rejectsWith(() => store.readAll({ limit: 1.5 }), 'BUSBAR_ERR_INVALID_ARGUMENT', 'limit 1.5');
    });
  });

  describe('readStream', () => {
    it('reads a stream forward with its versions, its name and global positions', async (t) => {
      const store = await fresh(t);
      const { first } = await twoStreams(store);
      const read = await store.readStream('account-1');
      assert.deepEqual(versionsOf(read), [1, 2, 3, 4, 5]);
      assert.deepEqual(positionsOf(read), [1, 3, 4, 6, 7]);
      assert.deepEqual(idsOf(read), first.map((e) => e.id));
      for (const row of read) {
        assert.equal(row.stream, 'account-1');
        assert.equal(row.event.sequence, row.position);
      }
      const all = (await store.readAll()).events;
      assert.deepEqual(
        all.map((row) => [row.stream, row.streamVersion]),
        [
          ['account-1', 1],
          ['account-2', 1],
          ['account-1', 2],
          ['account-1', 3],
          ['account-2', 2],
          ['account-1', 4],
          ['account-1', 5],
        ],
      );
    });

    it('reads a stream backward from its last event', async (t) => {
      const store = await fresh(t);
      await twoStreams(store);
      assert.deepEqual(await versionsIn(store, 'account-1', { direction: 'backward' }), [5, 4, 3, 2, 1]);
    });

    it('reads from a version, inclusive, in either direction', async (t) => {
      const store = await fresh(t);
      await twoStreams(store);
      assert.deepEqual(await versionsIn(store, 'account-1', { from: 3 }), [3, 4, 5]);
      assert.deepEqual(await versionsIn(store, 'account-1', { from: 3, direction: 'backward' }), [3, 2, 1]);
      assert.deepEqual(await store.readStream('account-1', { from: 6 }), []);
    });

    it('reads at most limit events', async (t) => {
      const store = await fresh(t);
      await twoStreams(store);
      const backward = 'backward';
      assert.deepEqual(await versionsIn(store, 'account-1', { limit: 2 }), [1, 2]);
      assert.deepEqual(await versionsIn(store, 'account-1', { limit: 2, direction: backward }), [5, 4]);
      assert.deepEqual(await versionsIn(store, 'account-1', { from: 2, limit: 2 }), [2, 3]);
      assert.deepEqual(await versionsIn(store, 'account-1', { from: 4, limit: 2, direction: backward }), [4, 3]);
    });

    it('reads an unknown stream as empty at version 0', async (t) => {
      const store = await fresh(t);
      await twoStreams(store);
      assert.deepEqual(await store.readStream('account-3'), []);
      assert.deepEqual(await store.readStream('account-3', { direction: 'backward' }), []);
      assert.equal(await store.streamVersion('account-3'), 0);
    });

    it('rejects an unknown direction or a negative from with BUSBAR_ERR_INVALID_ARGUMENT', async (t) => {
      const store = await fresh(t);
      await rejectsWith(
        () => store.readStream('account-1', { direction: 'sideways' as never }),
        'BUSBAR_ERR_INVALID_ARGUMENT',
      );
      await rejectsWith(() => store.readStream('account-1', { from: -1 }), 'BUSBAR_ERR_INVALID_ARGUMENT');
    });
  });

  describe('positionAt', () => {
    it('finds the last position recorded before a time', async (t) => {
      const store = await fresh(t);
      assert.equal(await store.positionAt(new Date()), 0);
      await store.append(events(2));
      await sleep(20);
      const between = new Date();
      await sleep(20);
      const later = event();
      await store.append([later]);
      assert.equal(await store.positionAt(new Date(0)), 0);
      assert.equal(await store.positionAt(between), 2);
      assert.equal(await store.positionAt(new Date(Date.now() + 60_000)), 3);
      const { events: fromThen } = await store.readAll({ after: await store.positionAt(between) });
      assert.deepEqual(idsOf(fromThen), [later.id]);
      // An event recorded exactly at the time is not before it.
      const { recordedAt } = (await store.getEvent(later.id))!;
      assert.equal(await store.positionAt(new Date(recordedAt)), 2);
    });
  });
}
