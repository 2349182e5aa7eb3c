import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LoggedEvent } from '../../core/event-log.ts';
import { assertConcurrencyError, settlesWithin } from './assertions.ts';
import { event, events, idsOf, positionsOf, span } from './fixtures.ts';
import type { ContractContext } from './store-under-test.ts';

/** Waiting for appends, and many writers at once. */
export function describeLiveTailAndConcurrency<T>({ fresh }: ContractContext<T>): void {
  describe('waitForAppend', () => {
    it('resolves at once when the head is already past the position', async (t) => {
      const store = await fresh(t);
      await store.append(events(2));
      assert.equal(await settlesWithin(store.waitForAppend(0), 500), true);
      assert.equal(await settlesWithin(store.waitForAppend(1), 500), true);
    });

    it('resolves after a later append, and not before', async (t) => {
      const store = await fresh(t);
      await store.append([event()]);
      const waiting = store.waitForAppend(1);
      assert.equal(await settlesWithin(waiting, 30), false, 'still waiting with nothing appended');
      await store.append([event()]);
      assert.equal(await settlesWithin(waiting, 1000), true, 'woken by append');
      const waitingForStream = store.waitForAppend(2);
      await store.appendToStream('account-1', [event()]);
      assert.equal(await settlesWithin(waitingForStream, 1000), true, 'woken by appendToStream');
    });

    it('resolves when its signal aborts', async (t) => {
      const store = await fresh(t);
      const controller = new AbortController();
      const waiting = store.waitForAppend(0, controller.signal);
      assert.equal(await settlesWithin(waiting, 30), false, 'still waiting before the abort');
      controller.abort();
      assert.equal(await settlesWithin(waiting, 1000), true, 'released by the abort');
      await waiting;
      const aborted = store.waitForAppend(0, AbortSignal.abort());
      assert.equal(await settlesWithin(aborted, 500), true, 'an aborted signal returns at once');
    });
  });

  describe('concurrent writers', () => {
    it('lets exactly one of 20 concurrent appends at the same expected version through', async (t) => {
      const store = await fresh(t);
      await store.appendToStream('account-1', events(2));
      const contenders = events(20);
      const outcomes = await Promise.allSettled(
        contenders.map((one) => store.appendToStream('account-1', [one], { expectedVersion: 2 })),
      );
      const winners = contenders.filter((_, i) => outcomes[i]!.status === 'fulfilled');
      assert.equal(winners.length, 1, 'one append succeeds');
      for (const outcome of outcomes) {
        if (outcome.status === 'fulfilled') assert.deepEqual(outcome.value, { positions: [3], version: 3 });
        else assertConcurrencyError(outcome.reason, 'account-1', 2, 3);
      }
      assert.equal(await store.head(), 3);
      assert.deepEqual(idsOf(await store.readStream('account-1', { from: 3 })), [winners[0]!.id]);
    });

    it('lets exactly one of 10 concurrent no_stream appends create the stream', async (t) => {
      const store = await fresh(t);
      const outcomes = await Promise.allSettled(
        events(10).map((one) => store.appendToStream('account-1', [one], { expectedVersion: 'no_stream' })),
      );
      assert.equal(outcomes.filter((outcome) => outcome.status === 'fulfilled').length, 1);
      for (const outcome of outcomes) {
        if (outcome.status === 'rejected') assertConcurrencyError(outcome.reason, 'account-1', 'no_stream', 1);
      }
      assert.equal(await store.streamVersion('account-1'), 1);
      assert.equal(await store.head(), 1);
    });

    it('gives 200 concurrent appends the distinct positions 1 to 200', async (t) => {
      const store = await fresh(t);
      const written = events(200);
      const results = await Promise.all(written.map((one) => store.append([one])));
      assert.deepEqual(results.flat().sort((a, b) => a - b), span(1, 200));
      assert.equal(await store.head(), 200);
      const { events: read } = await store.readAll();
      assert.deepEqual(positionsOf(read), span(1, 200));
      written.forEach((one, i) => assert.equal(read[results[i]![0]! - 1]!.event.id, one.id));
    });

    it('shows a live reader every event exactly once, in position order, while 8 writers append', async (t) => {
      const store = await fresh(t);
      const written = new Map<string, number>();
      const writer = async (w: number): Promise<void> => {
        for (let i = 0; i < 50; i++) {
          if (i % 5 === 0) {
            const batch = events(3, `writers.w${w}`);
            const positions = await store.append(batch);
            positions.forEach((position, j) => written.set(batch[j]!.id, position));
          } else if (i % 5 === 1) {
            const one = event(`writers.w${w}`);
            const { positions } = await store.appendToStream(`writer-${w}`, [one]);
            written.set(one.id, positions[0]!);
          } else {
            const one = event(`writers.w${w}`);
            written.set(one.id, (await store.append([one]))[0]!);
          }
        }
      };
      const total = 8 * (10 * 3 + 40);
      let writing = true;
      const writers = Promise.all(span(1, 8).map(writer)).finally(() => {
        writing = false;
      });
      // Awaited after the reader; handled now so that a failing reader leaves no unhandled rejection.
      writers.catch(() => undefined);
      const seen: LoggedEvent[] = [];
      const deadline = Date.now() + 15_000;
      let after = 0;
      for (;;) {
        assert.ok(Date.now() < deadline, `the reader saw ${seen.length} of ${total} events in time`);
        const page = await store.readAll({ after, limit: 64 });
        for (const row of page.events) {
          const previous = seen.at(-1)?.position ?? 0;
          assert.ok(row.position > previous, `position ${row.position} read after ${previous}`);
          seen.push(row);
        }
        after = page.last;
        if (page.events.length > 0) continue;
        // The writers are done and nothing is left past the cursor: the reader has seen all it will.
        if (!writing && after >= (await store.head())) break;
        // The timer keeps the loop going, and the deadline checked, should the store never wake it.
        await Promise.race([store.waitForAppend(after, AbortSignal.timeout(250)), sleep(300)]);
      }
      await writers;
      assert.equal(written.size, total);
      assert.deepEqual(positionsOf(seen), span(1, total));
      assert.deepEqual(new Map(seen.map((row) => [row.event.id, row.position])), written);
    });
  });
}
