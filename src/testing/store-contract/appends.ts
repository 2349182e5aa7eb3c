import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { event, events, idsOf, positionsOf, span, stored, versionsIn } from './fixtures.ts';
import type { ContractContext } from './store-under-test.ts';

/** Appending events, and appending the same ids again. */
export function describeAppends<T>({ fresh, openSubject, reopened, itKeeps }: ContractContext<T>): void {
  describe('append', () => {
    it('appends one event at position 1 and moves the head to it', async (t) => {
      const store = await fresh(t);
      assert.equal(await store.head(), 0);
      const one = event();
      assert.deepEqual(await store.append([one]), [1]);
      assert.equal(await store.head(), 1);
      const page = await store.readAll();
      assert.deepEqual(page.events.map((row) => row.event), [stored(one, 1)]);
      assert.equal(page.last, 1);
    });

    it('appends batches at consecutive positions with no gaps', async (t) => {
      const store = await fresh(t);
      const first = events(3);
      const second = events(2);
      assert.deepEqual(await store.append(first), [1, 2, 3]);
      assert.deepEqual(await store.append(second), [4, 5]);
      assert.equal(await store.head(), 5);
      const { events: read } = await store.readAll();
      assert.deepEqual(positionsOf(read), [1, 2, 3, 4, 5]);
      assert.deepEqual(idsOf(read), [...first, ...second].map((e) => e.id));
    });

    it('keeps each batch contiguous when batches are appended concurrently', async (t) => {
      const store = await fresh(t);
      const batches = Array.from({ length: 10 }, () => events(5));
      const results = await Promise.all(batches.map((batch) => store.append(batch)));
      for (const positions of results) {
        assert.deepEqual(positions, span(positions[0]!, positions[0]! + 4));
      }
      assert.deepEqual(results.flat().sort((a, b) => a - b), span(1, 50));
      const { events: read } = await store.readAll();
      batches.forEach((batch, i) => {
        const at = results[i]![0]! - 1;
        assert.deepEqual(idsOf(read.slice(at, at + 5)), batch.map((e) => e.id));
      });
    });

    it('stamps every event it returns with a sequence equal to its position', async (t) => {
      const store = await fresh(t);
      await store.append(events(2));
      await store.appendToStream('account-1', events(2));
      const { events: read } = await store.readAll();
      assert.equal(read.length, 4);
      for (const row of read) assert.equal(row.event.sequence, row.position);
      for (const row of await store.readStream('account-1')) {
        assert.equal(row.event.sequence, row.position);
      }
      assert.equal((await store.getEvent(read[2]!.event.id))?.event.sequence, 3);
    });

    it('round-trips an event through getEvent with its data, subject and extensions', async (t) => {
      const store = await fresh(t);
      const data = {
        order: { id: 'o-7', lines: [{ sku: 'a', qty: 2, price: 9.5 }, null, true, 'ü €'] },
        empty: {},
        list: [],
      };
      const original = event(
        'orders.created',
        {
          subject: 'order-7',
          key: 'customer-3',
          time: '2025-06-01T12:00:00.000Z',
          traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
          priority: 5,
          datacontenttype: 'application/json',
          extensions: { tenant: 'acme', beta: true, region2: 3 },
        },
        data,
      );
      await store.append([event()]);
      const before = Date.now();
      await store.append([original]);
      const after = Date.now();
      const logged = await store.getEvent(original.id);
      assert.ok(logged !== undefined, 'getEvent finds the event');
      assert.deepEqual(logged.event, stored(original, 2));
      assert.equal(logged.position, 2);
      assert.equal(logged.stream, undefined);
      assert.equal(logged.streamVersion, undefined);
      assert.equal(logged.recipients, undefined);
      // A database server's clock may be a little off this process's.
      assert.ok(
        logged.recordedAt >= before - 2000 && logged.recordedAt <= after + 2000,
        `recordedAt ${logged.recordedAt} is the time of the append`,
      );
    });

    it('round-trips binary data as a Uint8Array', async (t) => {
      const store = await fresh(t);
      const bytes = new Uint8Array([0, 1, 127, 128, 254, 255]);
      const binary = event('files.uploaded', { datacontenttype: 'application/octet-stream' }, bytes);
      const [position] = await store.append([binary]);
      const logged = await store.getEvent(binary.id);
      assert.ok(logged?.event.data instanceof Uint8Array, 'data is a Uint8Array');
      assert.deepEqual(logged.event, stored(binary, position!));
      assert.deepEqual((await store.readAll()).events[0]?.event.data, bytes);
    });

    it('keeps the recipients an event was appended with when the caller changes its array later', async (t) => {
      const store = await fresh(t);
      const recipients = ['auditor'];
      const one = event();
      await store.append([one], { recipients });
      recipients.push('intruder');
      assert.deepEqual((await store.getEvent(one.id))?.recipients, ['auditor']);
      assert.deepEqual((await store.readAll()).events[0]?.recipients, ['auditor']);
    });

    it('returns undefined from getEvent for an unknown id', async (t) => {
      const store = await fresh(t);
      await store.append([event()]);
      assert.equal(await store.getEvent('no-such-event'), undefined);
    });

    itKeeps('keeps events and streams across a reopen and continues the positions', async (t) => {
      const subject = await openSubject(t);
      assert.ok(subject.reopen, 'a persistent store under test must come with reopen()');
      const loose = event();
      await subject.store.append([loose], { recipients: ['audit'] });
      const streamed = events(2);
      await subject.store.appendToStream('account-1', streamed);
      await subject.store.setStreamMetadata('account-1', { maxCount: 10 });
      const store = await reopened(t, subject);
      assert.equal(await store.head(), 3);
      assert.deepEqual((await store.getEvent(loose.id))?.event, stored(loose, 1));
      assert.deepEqual((await store.readAll()).events[0]?.recipients, ['audit']);
      assert.deepEqual(idsOf(await store.readStream('account-1')), streamed.map((e) => e.id));
      assert.equal(await store.streamVersion('account-1'), 2);
      assert.deepEqual(await store.streamMetadata('account-1'), { maxCount: 10 });
      assert.deepEqual(await store.append([event()]), [4]);
      assert.deepEqual(await store.appendToStream('account-1', [event()], { expectedVersion: 2 }), {
        positions: [5],
        version: 3,
      });
    });
  });

  describe('idempotent append', () => {
    it('returns the original position for an id already stored and adds no row', async (t) => {
      const store = await fresh(t);
      const [a, b] = events(2);
      assert.deepEqual(await store.append([a!, b!]), [1, 2]);
      assert.deepEqual(await store.append([b!]), [2]);
      assert.equal(await store.head(), 2);
      assert.deepEqual(positionsOf((await store.readAll()).events), [1, 2]);
    });

    it('appends only the new events of a batch where some ids are stored', async (t) => {
      const store = await fresh(t);
      const [a, b, c] = events(3);
      await store.append([a!]);
      assert.deepEqual(await store.append([b!, a!, c!]), [2, 1, 3]);
      assert.equal(await store.head(), 3);
      assert.deepEqual(idsOf((await store.readAll()).events), [a!.id, b!.id, c!.id]);
    });

    it('stores an id repeated within one batch once', async (t) => {
      const store = await fresh(t);
      const [a, b] = events(2);
      assert.deepEqual(await store.append([a!, b!, a!]), [1, 2, 1]);
      assert.equal(await store.head(), 2);
    });

    it('returns the original positions and version when appendToStream repeats stored ids', async (t) => {
      const store = await fresh(t);
      const batch = events(2);
      const original = { positions: [1, 2], version: 2 };
      assert.deepEqual(await store.appendToStream('account-1', batch), original);
      assert.deepEqual(await store.appendToStream('account-1', batch), original);
      assert.equal(await store.head(), 2);
      assert.equal(await store.streamVersion('account-1'), 2);
    });

    it('accepts a retried appendToStream with the old expectedVersion as a no-op', async (t) => {
      const store = await fresh(t);
      const [a, b] = events(2);
      await store.appendToStream('account-1', [a!], { expectedVersion: 'no_stream' });
      await store.appendToStream('account-1', [b!], { expectedVersion: 1 });
      const retriedA = await store.appendToStream('account-1', [a!], { expectedVersion: 'no_stream' });
      assert.deepEqual(retriedA, { positions: [1], version: 2 });
      const retriedB = await store.appendToStream('account-1', [b!], { expectedVersion: 1 });
      assert.deepEqual(retriedB, { positions: [2], version: 2 });
      assert.equal(await store.head(), 2);
      assert.deepEqual(await versionsIn(store, 'account-1'), [1, 2]);
    });

    it('appends only the new events when appendToStream repeats some stored ids', async (t) => {
      const store = await fresh(t);
      const [a, b] = events(2);
      await store.appendToStream('account-1', [a!]);
      const result = await store.appendToStream('account-1', [a!, b!], { expectedVersion: 1 });
      assert.deepEqual(result, { positions: [1, 2], version: 2 });
      assert.deepEqual(idsOf(await store.readStream('account-1')), [a!.id, b!.id]);
    });
  });
}
