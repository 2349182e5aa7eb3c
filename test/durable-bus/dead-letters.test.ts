// Retries and dead letters with a store: a dead letter is kept in the store,
// survives a restart, and leaves it once redriven and handled; the checkpoint
// moves past a dead-lettered event.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEAD_LETTER_TOPIC, type DeadLetterNotice, type RetryOptions } from '../../src/index.ts';
import { until } from '../support/async.ts';
import { forEachStore } from './stores.ts';

type Events = { 'order.placed': { n: number } };

const quickRetry: RetryOptions = { attempts: 2, initialDelay: 1, maxDelay: 1, jitter: false };

function failing(): never {
  throw new Error('smtp down');
}

forEachStore((open) => {
  test('a dead letter is stored, listed after a restart, and gone from the store once redriven and handled', async (t) => {
    const log = await open(t);
    const first = log.bus<Events>();
    first.subscribe('mailer', 'order.*', failing, { retry: quickRetry });
    const receipt = await first.publish('order.placed', { n: 1 });
    const [result] = await receipt.settled();
    assert.ok(result?.status === 'failed', `status ${result?.status}`);
    assert.deepEqual([result.error.message, result.attempts], ['smtp down', 2]);

    const [letter] = first.deadLetters();
    assert.deepEqual(
      { subscription: letter!.subscription, eventId: letter!.event.id, attempts: letter!.attempts, error: letter!.error.message },
      { subscription: 'mailer', eventId: receipt.id, attempts: 2, error: 'smtp down' },
    );
    // Stored, and the checkpoint past the event and its dead-letter notice
    // (position 2), before the restart: closing right away is the next test.
    await waitForStore(async () => (await log.store.listDeadLetters()).length === 1);
    await waitForStore(async () => (await log.store.loadCheckpoint('mailer')) === 2);
    await log.restart();

    const second = log.bus<Events>();
    await second.ready;
    const restored = second.deadLetters();
    assert.equal(restored.length, 1);
    assert.deepEqual(
      {
        id: restored[0]!.id,
        subscription: restored[0]!.subscription,
        event: restored[0]!.event,
        attempts: restored[0]!.attempts,
        error: [restored[0]!.error.name, restored[0]!.error.message],
        failedAt: restored[0]!.failedAt,
      },
      {
        id: letter!.id,
        subscription: 'mailer',
        event: { ...receipt.event, sequence: 1 },
        attempts: 2,
        error: ['Error', 'smtp down'],
        failedAt: letter!.failedAt,
      },
    );

    // The checkpoint moved past the dead-lettered event: it is not handled again.
    const handled: number[] = [];
    const handle = second.subscribe('mailer', 'order.*', (event) => {
      handled.push(event.data.n);
      return `mailed ${event.data.n}`;
    });
    await handle.ready;
    await second.idle();
    assert.deepEqual(handled, []);
    assert.equal((await handle.lag()).events, 0);

    const receipts = await second.redrive();
    assert.equal(receipts.length, 1);
    assert.equal(receipts[0]!.id, receipt.id);
    assert.deepEqual(await receipts[0]!.settled(), [{ subscription: 'mailer', status: 'completed', value: 'mailed 1', attempts: 1 }]);
    assert.deepEqual(handled, [1]);
    assert.deepEqual(second.deadLetters(), []);
    await waitForStore(async () => (await log.store.listDeadLetters()).length === 0);

    await log.restart();
    const third = log.bus<Events>();
    await third.ready;
    assert.deepEqual(third.deadLetters(), []);
    assert.deepEqual(await log.store.listDeadLetters(), []);
  });

  test('a redrive waits for the subscription: without it the letter stays listed and stored', async (t) => {
    const log = await open(t);
    const first = log.bus<Events>();
    first.subscribe('mailer', 'order.*', failing, { retry: quickRetry });
    await (await first.publish('order.placed', { n: 1 })).settled();
    await log.restart();

    const second = log.bus<Events>();
    await second.ready;
    assert.deepEqual(await second.redrive(), []);
    assert.equal(second.deadLetters().length, 1);
    assert.equal((await log.store.listDeadLetters()).length, 1);
  });

  test('a redriven letter that fails again is replaced by a new one, in the list and in the store', async (t) => {
    const log = await open(t);
    const first = log.bus<Events>();
    first.subscribe('mailer', 'order.*', failing, { retry: quickRetry });
    const receipt = await first.publish('order.placed', { n: 1 });
    await receipt.settled();
    const [original] = first.deadLetters();
    const [again] = await first.redrive();
    assert.equal((await again!.settled())[0]!.status, 'failed');
    const letters = first.deadLetters();
    assert.equal(letters.length, 1);
    assert.notEqual(letters[0]!.id, original!.id);
    assert.equal(letters[0]!.event.id, receipt.id);
    await waitForStore(async () => {
      const stored = await log.store.listDeadLetters();
      return stored.length === 1 && stored[0]!.id === letters[0]!.id;
    });

    await log.restart();
    const second = log.bus<Events>();
    await second.ready;
    assert.deepEqual(second.deadLetters().map((each) => each.id), [letters[0]!.id]);
  });

  test('each dead letter is announced on busbar.dead_letter, which is logged too', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    const notices: DeadLetterNotice[] = [];
    bus.subscribe('alerts', DEAD_LETTER_TOPIC, (event) => {
      notices.push(event.data as DeadLetterNotice);
    });
    bus.subscribe('mailer', 'order.*', failing, { retry: quickRetry });
    const receipt = await bus.publish('order.placed', { n: 1 });
    await receipt.settled();
    await until(() => notices.length === 1);
    const [letter] = bus.deadLetters();
    assert.deepEqual(notices, [
      {
        deadLetterId: letter!.id,
        subscription: 'mailer',
        eventId: receipt.id,
        eventType: 'order.placed',
        attempts: 2,
        error: { name: 'Error', message: 'smtp down' },
      },
    ]);
    const page = await log.store.readAll();
    assert.deepEqual(page.events.map((each) => each.event.type), ['order.placed', DEAD_LETTER_TOPIC]);
  });

  test('closing right after a dead letter keeps the checkpoint past it, so it is not handled or dead-lettered again', async (t) => {
    const log = await open(t);
    const first = log.bus<Events>();
    first.subscribe('mailer', 'order.*', failing, { retry: quickRetry });
    const receipt = await first.publish('order.placed', { n: 1 });
    await receipt.settled();
    await log.restart();
    assertPast(await log.store.loadCheckpoint('mailer'), receipt.sequence!);

    const second = log.bus<Events>();
    await second.ready;
    const handled: number[] = [];
    second.subscribe('mailer', 'order.*', (event) => {
      handled.push(event.data.n);
      failing();
    }, { retry: { attempts: 1 } });
    await second.publish('order.placed', { n: 2 });
    await second.idle();
    assert.deepEqual(handled, [2]);
    assert.deepEqual(second.deadLetters().map((each) => each.event.data), [{ n: 1 }, { n: 2 }]);
  });

  test('unsubscribing right after a dead letter saves the checkpoint past it', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    const handle = bus.subscribe('mailer', 'order.*', failing, { retry: quickRetry });
    const receipt = await bus.publish('order.placed', { n: 1 });
    await receipt.settled();
    await handle.unsubscribe();
    assertPast(await log.store.loadCheckpoint('mailer'), receipt.sequence!);
  });

  test('after a restart the events behind a dead letter are not redelivered, those after it that were unfinished are', async (t) => {
    const log = await open(t);
    const first = log.bus<Events>();
    const handled: number[] = [];
    first.subscribe('mailer', 'order.*', (event) => {
      if (event.data.n === 2) throw new Error('bad order');
      handled.push(event.data.n);
    }, { retry: quickRetry });
    for (const n of [1, 2, 3]) await first.publish('order.placed', { n });
    await first.idle();
    assert.deepEqual(handled, [1, 3]);
    await log.restart();

    const second = log.bus<Events>();
    await second.ready;
    const again: number[] = [];
    second.subscribe('mailer', 'order.*', (event) => {
      again.push(event.data.n);
    });
    await second.publish('order.placed', { n: 4 });
    await second.idle();
    assert.deepEqual(again, [4]);
    assert.deepEqual(second.deadLetters().map((each) => each.event.data), [{ n: 2 }]);
  });
});

/** The checkpoint may stop before or after the dead-letter notice that follows the event, not before the event. */
function assertPast(checkpoint: number | undefined, position: number): void {
  assert.ok(checkpoint !== undefined && checkpoint >= position, `checkpoint ${checkpoint} is before position ${position}`);
}

/** Polls an asynchronous check (store writes land after the bus has moved on). */
async function waitForStore(check: () => Promise<boolean>, timeout = 2000): Promise<void> {
  const end = Date.now() + timeout;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('the store did not get there in time');
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}
