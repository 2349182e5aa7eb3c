import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BusbarError } from '../../core/errors.ts';
import { rejectsWith, settlesWithin } from './assertions.ts';
import { deadLetter, event, idsOf, positionsOf, span, stored } from './fixtures.ts';
import type { ContractContext } from './store-under-test.ts';

/** Ids and data built to break a store, and a store after close. */
export function describeHostileInputAndClosing<T>({ fresh }: ContractContext<T>): void {
  describe('hostile input', () => {
    const hostileStreams = [
      "'; DROP TABLE events; --",
      'a"b',
      "a'b",
      'back\\slash',
      '%',
      '_',
      'with space and\ttab',
      'ストリーム-🚌-ñ',
      's'.repeat(256),
    ];

    it('round-trips stream ids with quotes, SQL, wildcards and unicode, each a stream of its own', async (t) => {
      const store = await fresh(t);
      for (const [i, stream] of hostileStreams.entries()) {
        const result = await store.appendToStream(stream, [event()], { expectedVersion: 'no_stream' });
        assert.deepEqual(result, { positions: [i + 1], version: 1 }, stream);
        await store.setStreamMetadata(stream, { maxCount: 5 });
      }
      for (const [i, stream] of hostileStreams.entries()) {
        const read = await store.readStream(stream);
        assert.deepEqual(
          read.map((row) => [row.stream, row.streamVersion, row.position]),
          [[stream, 1, i + 1]],
          stream,
        );
        assert.equal(await store.streamVersion(stream), 1, stream);
        assert.deepEqual(await store.streamMetadata(stream), { maxCount: 5 }, stream);
      }
      assert.deepEqual(await store.readStream('a'), []);
      assert.equal(await store.head(), hostileStreams.length);
      assert.deepEqual(await store.append([event()]), [hostileStreams.length + 1]);
    });

    it('rejects a stream id of 257 characters with BUSBAR_ERR_INVALID_ARGUMENT', async (t) => {
      const store = await fresh(t);
      const long = 's'.repeat(257);
      const invalid = 'BUSBAR_ERR_INVALID_ARGUMENT';
      await rejectsWith(() => store.appendToStream(long, [event()]), invalid, 'appendToStream');
      await rejectsWith(() => store.readStream(long), invalid, 'readStream');
      await rejectsWith(() => store.streamVersion(long), invalid, 'streamVersion');
      await rejectsWith(() => store.setStreamMetadata(long, { maxCount: 1 }), invalid, 'setStreamMetadata');
      assert.equal(await store.head(), 0);
    });

    it('rejects an empty stream id with BUSBAR_ERR_INVALID_ARGUMENT', async (t) => {
      const store = await fresh(t);
      const invalid = 'BUSBAR_ERR_INVALID_ARGUMENT';
      await rejectsWith(() => store.appendToStream('', [event()]), invalid, 'appendToStream');
      await rejectsWith(() => store.readStream(''), invalid, 'readStream');
      await rejectsWith(() => store.streamVersion(''), invalid, 'streamVersion');
      assert.equal(await store.head(), 0);
      assert.deepEqual(await store.append([event()]), [1]);
    });

    it('round-trips hostile event ids, checkpoint names, consumer names and dead-letter ids', async (t) => {
      const store = await fresh(t);
      const sql = "x'); DELETE FROM events; --";
      const hostile = event('orders.created', { id: sql, subject: sql });
      assert.deepEqual(await store.append([hostile]), [1]);
      assert.deepEqual((await store.getEvent(sql))?.event, stored(hostile, 1));
      await store.saveCheckpoint(sql, 1);
      assert.equal(await store.loadCheckpoint(sql), 1);
      assert.equal(await store.loadCheckpoint("x'"), undefined);
      assert.equal(await store.markProcessed('"; --', sql), true);
      assert.equal(await store.markProcessed('"; --', sql), false);
      const letter = deadLetter(sql, hostile, 1, sql);
      await store.addDeadLetter(letter);
      assert.deepEqual(await store.listDeadLetters(), [letter]);
      assert.equal(await store.removeDeadLetter(sql), true);
      assert.deepEqual(idsOf((await store.readAll()).events), [sql]);
    });

    it('rejects empty or over-long checkpoint and consumer names with BUSBAR_ERR_INVALID_ARGUMENT', async (t) => {
      const store = await fresh(t);
      const invalid = 'BUSBAR_ERR_INVALID_ARGUMENT';
      for (const bad of ['', 'n'.repeat(257)]) {
        await rejectsWith(() => store.saveCheckpoint(bad, 1), invalid, 'saveCheckpoint');
        await rejectsWith(() => store.loadCheckpoint(bad), invalid, 'loadCheckpoint');
        await rejectsWith(() => store.markProcessed(bad, 'evt-1'), invalid, 'markProcessed');
      }
    });

    it('stores data with NUL characters or lone surrogates, or refuses it with a clear code, keeping positions gap-free', async (t) => {
      const store = await fresh(t);
      for (const text of ['a\u0000b', 'x\ud800y', '\udfff']) {
        const hostile = event('notes.added', undefined, { text, [text]: text });
        let position: number | undefined;
        try {
          [position] = await store.append([hostile]);
        } catch (error) {
          const clear = ['BUSBAR_ERR_INVALID_EVENT', 'BUSBAR_ERR_INVALID_ARGUMENT'];
          assert.ok(error instanceof BusbarError && clear.includes(error.code), `refused with ${String(error)}`);
        }
        if (position !== undefined) {
          assert.deepEqual((await store.getEvent(hostile.id))?.event, stored(hostile, position));
        }
      }
      const [next] = await store.append([event()]);
      assert.equal(next, await store.head());
      assert.deepEqual(positionsOf((await store.readAll()).events), span(1, next!));
    });
  });

  describe('a closed store', () => {
    it('rejects every operation with BUSBAR_ERR_CLOSED', async (t) => {
      const store = await fresh(t);
      const one = event();
      await store.append([one]);
      await store.close();
      const operations: Record<string, () => Promise<unknown>> = {
        append: () => store.append([event()]),
        appendToStream: () => store.appendToStream('account-1', [event()]),
        readAll: () => store.readAll(),
        readStream: () => store.readStream('account-1'),
        head: () => store.head(),
        positionAt: () => store.positionAt(new Date()),
        streamVersion: () => store.streamVersion('account-1'),
        getEvent: () => store.getEvent(one.id),
        setStreamMetadata: () => store.setStreamMetadata('account-1', { maxCount: 1 }),
        streamMetadata: () => store.streamMetadata('account-1'),
        loadCheckpoint: () => store.loadCheckpoint('projector'),
        saveCheckpoint: () => store.saveCheckpoint('projector', 1),
        addDeadLetter: () => store.addDeadLetter(deadLetter('dl-1', one, 1)),
        listDeadLetters: () => store.listDeadLetters(),
        removeDeadLetter: () => store.removeDeadLetter('dl-1'),
        markProcessed: () => store.markProcessed('mailer', one.id),
        transaction: () => store.transaction(async () => 'ran'),
      };
      for (const [operation, call] of Object.entries(operations)) {
        await rejectsWith(call, 'BUSBAR_ERR_CLOSED', operation);
      }
    });

    it('releases readers waiting for an append when it closes', async (t) => {
      const store = await fresh(t);
      const waiting = store.waitForAppend(0);
      assert.equal(await settlesWithin(waiting, 30), false);
      await store.close();
      assert.equal(await settlesWithin(waiting, 1000), true, 'the waiter is released');
      // Released either way: resolved, or rejected as closed.
      await waiting.catch((error: unknown) => assert.equal((error as BusbarError).code, 'BUSBAR_ERR_CLOSED'));
    });

    it('closes twice without error', async (t) => {
      const store = await fresh(t);
      await store.close();
      await store.close();
    });
  });
}
