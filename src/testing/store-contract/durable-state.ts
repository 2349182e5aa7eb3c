import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { rejectsWith } from './assertions.ts';
import { byId, deadLetter, event } from './fixtures.ts';
import type { ContractContext } from './store-under-test.ts';

/** What subscriptions keep in the store: checkpoints, dead letters and processed ids. */
export function describeDurableState<T>({ fresh, openSubject, reopened, itKeeps }: ContractContext<T>): void {
  describe('checkpoints', () => {
    it('loads no checkpoint for a name never saved', async (t) => {
      const store = await fresh(t);
      assert.equal(await store.loadCheckpoint('projector'), undefined);
    });

    it('loads the position saved last under each name', async (t) => {
      const store = await fresh(t);
      await store.saveCheckpoint('projector', 5);
      await store.saveCheckpoint('mailer', 0);
      assert.equal(await store.loadCheckpoint('projector'), 5);
      assert.equal(await store.loadCheckpoint('mailer'), 0);
      await store.saveCheckpoint('projector', 9);
      assert.equal(await store.loadCheckpoint('projector'), 9);
      // A replay rewinds a subscription.
      await store.saveCheckpoint('projector', 2);
      assert.equal(await store.loadCheckpoint('projector'), 2);
    });

    it('rejects a checkpoint position that is not an integer >= 0 with BUSBAR_ERR_INVALID_ARGUMENT', async (t) => {
      const store = await fresh(t);
      for (const position of [-1, 1.5, Number.NaN]) {
        await rejectsWith(
          () => store.saveCheckpoint('projector', position),
          'BUSBAR_ERR_INVALID_ARGUMENT',
          `position ${position}`,
        );
      }
      assert.equal(await store.loadCheckpoint('projector'), undefined);
    });

    itKeeps('keeps checkpoints across a reopen', async (t) => {
      const subject = await openSubject(t);
      assert.ok(subject.reopen, 'a persistent store under test must come with reopen()');
      await subject.store.saveCheckpoint('projector', 42);
      const store = await reopened(t, subject);
      assert.equal(await store.loadCheckpoint('projector'), 42);
      assert.equal(await store.loadCheckpoint('mailer'), undefined);
    });
  });

  describe('dead letters', () => {
    it('adds, lists and removes dead letters', async (t) => {
      const store = await fresh(t);
      assert.deepEqual(await store.listDeadLetters(), []);
      const first = deadLetter('dl-1', event(), 1, 'BUSBAR_ERR_HANDLER_TIMEOUT');
      const payment = event('payments.received', undefined, { amount: 12.5, tags: ['x'] });
      const second = deadLetter('dl-2', payment, 2);
      await store.addDeadLetter(first);
      await store.addDeadLetter(second);
      assert.deepEqual((await store.listDeadLetters()).sort(byId), [first, second]);
      assert.equal(await store.removeDeadLetter('dl-1'), true);
      assert.equal(await store.removeDeadLetter('dl-1'), false);
      assert.equal(await store.removeDeadLetter('dl-unknown'), false);
      assert.deepEqual(await store.listDeadLetters(), [second]);
    });

    itKeeps('keeps dead letters across a reopen', async (t) => {
      const subject = await openSubject(t);
      assert.ok(subject.reopen, 'a persistent store under test must come with reopen()');
      const letter = deadLetter('dl-1', event(), 1, 'E_SMTP');
      await subject.store.addDeadLetter(letter);
      const store = await reopened(t, subject);
      assert.deepEqual(await store.listDeadLetters(), [letter]);
      assert.equal(await store.removeDeadLetter('dl-1'), true);
    });
  });

  describe('processed ids', () => {
    it('marks an id processed once per consumer', async (t) => {
      const store = await fresh(t);
      assert.equal(await store.markProcessed('mailer', 'evt-1'), true);
      assert.equal(await store.markProcessed('mailer', 'evt-1'), false);
      assert.equal(await store.markProcessed('billing', 'evt-1'), true);
      assert.equal(await store.markProcessed('mailer', 'evt-2'), true);
    });

    it('records ids marked inside a transaction that commits', async (t) => {
      const store = await fresh(t);
      const result = await store.transaction(async (transaction) => {
        assert.equal(await store.markProcessed('mailer', 'evt-1', transaction), true);
        assert.equal(await store.markProcessed('mailer', 'evt-1', transaction), false);
        return 'sent';
      });
      assert.equal(result, 'sent');
      assert.equal(await store.markProcessed('mailer', 'evt-1'), false);
    });

    it('forgets ids marked inside a transaction that throws, and rethrows its error', async (t) => {
      const store = await fresh(t);
      const failure = new Error('handler failed');
      await assert.rejects(
        store.transaction(async (transaction) => {
          assert.equal(await store.markProcessed('mailer', 'evt-1', transaction), true);
          throw failure;
        }),
        (error) => error === failure,
      );
      assert.equal(await store.markProcessed('mailer', 'evt-1'), true);
    });

    it('lets only one of two concurrent transactions mark the same id', async (t) => {
      const store = await fresh(t);
      const handle = (): Promise<boolean> =>
        store.transaction(async (transaction) => {
          const first = await store.markProcessed('mailer', 'evt-1', transaction);
          await sleep(20);
          return first;
        });
      assert.deepEqual((await Promise.all([handle(), handle()])).sort(), [false, true]);
    });

    itKeeps('keeps processed ids across a reopen', async (t) => {
      const subject = await openSubject(t);
      assert.ok(subject.reopen, 'a persistent store under test must come with reopen()');
      const { store: before } = subject;
      await before.markProcessed('mailer', 'evt-1');
      await before.transaction((transaction) => before.markProcessed('mailer', 'evt-2', transaction));
      const store = await reopened(t, subject);
      assert.equal(await store.markProcessed('mailer', 'evt-1'), false);
      assert.equal(await store.markProcessed('mailer', 'evt-2'), false);
    });
  });
}
