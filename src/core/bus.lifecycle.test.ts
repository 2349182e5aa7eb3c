// Lifecycle under stress: deep re-entrant publishing, subscribing and
// unsubscribing while events flow, closing with a deadline, and idle().
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { type BusbarError, createBus, type Receipt } from './index.ts';
import { gate, range } from '../../test/support/async.ts';

type Events = {
  'chain.step': { n: number };
  'count.tick': { n: number };
  'job.run': { n: number };
  'job.done': { n: number };
};

/** Whether `promise` has settled after the current turn of the event loop. */
async function hasSettled(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  await nextTurn();
  return settled;
}

const LEVELS = 100_000;

/** Asserts every level 1..LEVELS was seen exactly once. */
function assertEachLevelOnce(seen: Uint8Array): void {
  let missing = 0;
  let repeated = 0;
  for (let n = 1; n <= LEVELS; n++) {
    if (seen[n] === 0) missing++;
    else if (seen[n]! > 1) repeated++;
  }
  assert.equal(missing, 0, `${missing} levels were never delivered`);
  assert.equal(repeated, 0, `${repeated} levels were delivered more than once`);
}

test('a handler that publishes and awaits the next level, 100,000 levels deep, delivers every level exactly once', async () => {
  const bus = createBus<Events>();
  const seen = new Uint8Array(LEVELS + 1);
  let deepest = 0;
  bus.subscribe('chain', 'chain.step', async (event) => {
    const n = event.data.n;
    seen[n]!++;
    deepest = Math.max(deepest, n);
    if (n < LEVELS) await bus.publish('chain.step', { n: n + 1 });
  });
  await bus.publish('chain.step', { n: 1 });
  await bus.idle();

  assert.equal(deepest, LEVELS);
  assertEachLevelOnce(seen);
  assert.equal(bus.stats().total_published, LEVELS);
  assert.equal(bus.stats().subscriptions[0]!.completed, LEVELS);
  assert.equal(bus.stats().subscriptions[0]!.failed, 0, 'no level overflowed the stack');
  await bus.close();
});

test('a synchronous handler that publishes the next level without awaiting, 100,000 levels deep, delivers every level exactly once', async () => {
  const bus = createBus<Events>();
  const seen = new Uint8Array(LEVELS + 1);
  const failures: unknown[] = [];
  bus.subscribe('chain', 'chain.step', (event) => {
    const n = event.data.n;
    seen[n]!++;
    if (n < LEVELS) bus.publish('chain.step', { n: n + 1 }).catch((error) => failures.push(error));
  });
  await bus.publish('chain.step', { n: 1 });
  await bus.idle();

  assertEachLevelOnce(seen);
  assert.deepEqual(failures, []);
  assert.equal(bus.stats().subscriptions[0]!.completed, LEVELS);
  assert.equal(bus.stats().subscriptions[0]!.failed, 0, 'no level overflowed the stack');
  await bus.close();
});

test('two subscriptions that publish to each other, 100,000 hops deep, deliver every hop exactly once', async () => {
  const bus = createBus<Events>();
  const seen = new Uint8Array(LEVELS + 1);
  bus.subscribe('ping', 'job.run', (event) => {
    seen[event.data.n]!++;
    if (event.data.n < LEVELS) bus.publish('job.done', { n: event.data.n + 1 });
  });
  bus.subscribe('pong', 'job.done', async (event) => {
    seen[event.data.n]!++;
    if (event.data.n < LEVELS) await bus.publish('job.run', { n: event.data.n + 1 });
  });
  await bus.publish('job.run', { n: 1 });
  await bus.idle();

  assertEachLevelOnce(seen);
  await bus.close();
});

test('unsubscribing during delivery lets the running handler and the queued events finish, then runs teardown, and routes nothing new', async () => {
  const bus = createBus<Events>();
  const first = gate();
  const started = gate();
  const log: string[] = [];
  const handle = bus.subscribe(
    'worker',
    'job.run',
    async (event) => {
      if (event.data.n === 0) {
        started.open();
        await first.opened;
      }
      log.push(`handled ${event.data.n}`);
    },
    {
      teardown: async () => {
        await sleep(5);
        log.push('teardown');
      },
    },
  );

  const queued: Receipt[] = [await bus.publish('job.run', { n: 0 })];
  await started.opened;
  for (let n = 1; n <= 4; n++) queued.push(await bus.publish('job.run', { n }));

  const unsubscribed = handle.unsubscribe().then(() => log.push('unsubscribed'));
  const late: Receipt[] = [];
  for (let n = 5; n < 10; n++) late.push(await bus.publish('job.run', { n }));

  assert.equal(await hasSettled(unsubscribed), false, 'unsubscribe resolved before draining');
  assert.deepEqual(log, [], 'the first handler is still running');
  assert.equal(handle.stats().pending, 4, 'queued events are kept');
  for (const receipt of late) assert.deepEqual(receipt.recipients, []);

  first.open();
  await unsubscribed;
  assert.deepEqual(log, [
    'handled 0',
    'handled 1',
    'handled 2',
    'handled 3',
    'handled 4',
    'teardown',
    'unsubscribed',
  ]);
  for (const receipt of queued) {
    const [result] = await receipt.settled();
    assert.equal(result?.status, 'completed');
  }
  assert.equal(bus.stats().active_subscribers, 0);

  // The name is free again, and the old handler still sees nothing.
  const again: number[] = [];
  bus.subscribe('worker', 'job.run', (event) => {
    again.push(event.data.n);
  });
  await bus.publish('job.run', { n: 10 });
  await bus.idle();
  assert.deepEqual(again, [10]);
  assert.equal(log.length, 7);
  await bus.close();
});

/** Asserts `received` is `from..9999` for some `from` after the first event. */
function assertContiguousSuffix(received: number[], total: number): void {
  assert.ok(received.length > 0, 'the late subscription received nothing');
  const from = received[0]!;
  assert.ok(from > 0, 'the late subscription was in place before publishing began');
  assert.deepEqual(received, range(from, total), 'the suffix has a gap, a duplicate or a reorder');
}

test('a subscription made while a publisher loop runs receives exactly a contiguous suffix of the events', async () => {
  const bus = createBus<Events>();
  const total = 10_000;
  const early: number[] = [];
  const late: number[] = [];
  bus.subscribe('early', 'count.tick', (event) => {
    early.push(event.data.n);
  });
  let published = 0;
  const publisher = (async () => {
    for (let n = 0; n < total; n++) {
      await bus.publish('count.tick', { n });
      published = n + 1;
    }
  })();
  const subscriber = (async () => {
    while (published < total / 2) await null;
    bus.subscribe('late', 'count.*', (event) => {
      late.push(event.data.n);
    });
  })();
  await Promise.all([publisher, subscriber]);
  await bus.idle();

  assert.deepEqual(early, range(0, total));
  assertContiguousSuffix(late, total);
  assert.ok(late[0]! >= total / 2 && late[0]! <= total / 2 + 1, `suffix starts at ${late[0]}`);
  await bus.close();
});

test('a subscription with a slow setup, made while a publisher loop runs, receives a contiguous suffix after its setup', async () => {
  const bus = createBus<Events>();
  const total = 10_000;
  const late: number[] = [];
  let setupDone = false;
  let handledBeforeSetup = 0;
  let published = 0;
  const publisher = (async () => {
    for (let n = 0; n < total; n++) {
      await bus.publish('count.tick', { n });
      published = n + 1;
      if (n % 500 === 0) await nextTurn();
    }
  })();
  const subscriber = (async () => {
    while (published < 3_000) await nextTurn();
    const handle = bus.subscribe(
      'late',
      'count.tick',
      (event) => {
        if (!setupDone) handledBeforeSetup++;
        late.push(event.data.n);
      },
      {
        setup: async () => {
          await sleep(5);
          setupDone = true;
          return undefined;
        },
      },
    );
    await handle.ready;
  })();
  await Promise.all([publisher, subscriber]);
  await bus.idle();

  assert.equal(handledBeforeSetup, 0);
  assertContiguousSuffix(late, total);
  await bus.close();
});

test('close with a generous deadline refuses new publishes, drains queued work and runs teardown', async () => {
  const bus = createBus<Events>();
  const handled: number[] = [];
  const log: string[] = [];
  bus.subscribe(
    'worker',
    'job.run',
    async (event) => {
      await sleep(1);
      handled.push(event.data.n);
    },
    { teardown: () => void log.push(`teardown after ${handled.length}`) },
  );
  const receipts: Receipt[] = [];
  for (let n = 0; n < 50; n++) receipts.push(await bus.publish('job.run', { n }));

  const closing = bus.close({ deadline: 5_000 });
  assert.equal(bus.closed, true);
  await assert.rejects(bus.publish('job.run', { n: 50 }), {
    code: 'BUSBAR_ERR_CLOSED',
    status: 503,
  });
  assert.throws(() => bus.subscribe('another', 'job.run', () => {}), {
    code: 'BUSBAR_ERR_CLOSED',
  });

  const report = await closing;
  assert.deepEqual(report, { drained: true, unfinished: [] });
  assert.deepEqual(handled, range(0, 50));
  assert.deepEqual(log, ['teardown after 50']);
  for (const receipt of receipts) {
    const [result] = await receipt.settled();
    assert.equal(result?.status, 'completed');
  }
  assert.equal(bus.health().status, 'closed');
});

test('close with a hung handler reports the unfinished events, cancels them, aborts the handler and runs teardown', async () => {
  const bus = createBus<Events>();
  const started = gate();
  const hang = gate();
  let signal: AbortSignal | undefined;
  const handled: number[] = [];
  const fine: number[] = [];
  const log: string[] = [];
  bus.subscribe(
    'stuck',
    'job.run',
    async (event, context) => {
      if (event.data.n === 0) {
        signal = context.signal;
        started.open();
        await hang.opened;
      }
      handled.push(event.data.n);
      return 'done';
    },
    { teardown: () => void log.push('teardown') },
  );
  bus.subscribe('fine', 'job.run', (event) => {
    fine.push(event.data.n);
  });
  const receipts: Receipt[] = [];
  for (let n = 0; n < 4; n++) receipts.push(await bus.publish('job.run', { n }));
  await started.opened;

  const began = performance.now();
  const report = await bus.close({ deadline: 50 });
  const took = performance.now() - began;

  assert.ok(took >= 40 && took < 2_000, `close took ${took.toFixed(0)} ms for a 50 ms deadline`);
  assert.equal(report.drained, false);
  const byId = (a: { eventId: string }, b: { eventId: string }) => (a.eventId < b.eventId ? -1 : 1);
  assert.deepEqual(
    [...report.unfinished].sort(byId),
    receipts.map((r) => ({ subscription: 'stuck', eventId: r.id, type: 'job.run' })).sort(byId),
  );
  for (const receipt of receipts) {
    const [stuck, other] = await receipt.settled();
    assert.equal(stuck?.subscription, 'stuck');
    assert.ok(stuck?.status === 'cancelled', `status is ${stuck?.status}`);
    assert.equal((stuck.error as BusbarError).code, 'BUSBAR_ERR_CLOSED');
    assert.equal(other?.status, 'completed');
  }
  assert.equal(signal?.aborted, true, "the hung handler's signal was not aborted");
  assert.equal((signal?.reason as BusbarError).code, 'BUSBAR_ERR_CLOSED');
  assert.deepEqual(log, ['teardown']);
  assert.deepEqual(handled, []);
  assert.deepEqual(fine, [0, 1, 2, 3]);
  const stuckStats = bus.stats().subscriptions.find((each) => each.name === 'stuck')!;
  assert.equal(stuckStats.cancelled, 4);
  assert.equal(stuckStats.pending, 0);
  assert.equal(stuckStats.inFlight, 0);

  // The handler finishing late changes nothing: its event stays cancelled.
  hang.open();
  await nextTurn();
  assert.deepEqual(handled, [0]);
  assert.equal((await receipts[0]!.settled())[0]?.status, 'cancelled');
  assert.equal(bus.stats().subscriptions.find((each) => each.name === 'stuck')!.completed, 0);
  assert.equal(bus.stats().subscriptions.find((each) => each.name === 'stuck')!.inFlight, 0);
});

test('a publisher waiting for room under policy wait is released with BUSBAR_ERR_CLOSED when the bus closes', async () => {
  const bus = createBus<Events>();
  const first = gate();
  const started = gate();
  const handled: number[] = [];
  bus.subscribe(
    'slow',
    'job.run',
    async (event) => {
      if (event.data.n === 0) {
        started.open();
        await first.opened;
      }
      handled.push(event.data.n);
    },
    { queueLimit: 2, overflow: 'wait' },
  );
  await bus.publish('job.run', { n: 0 });
  await started.opened;
  await bus.publish('job.run', { n: 1 });
  await bus.publish('job.run', { n: 2 });
  const blocked = [bus.publish('job.run', { n: 3 }), bus.publish('job.run', { n: 4 })];
  await sleep(10);
  for (const each of blocked) assert.equal(await hasSettled(each), false);

  const closing = bus.close({ deadline: 2_000 });
  for (const each of blocked) await assert.rejects(each, { code: 'BUSBAR_ERR_CLOSED' });
  first.open();
  const report = await closing;

  assert.deepEqual(report, { drained: true, unfinished: [] });
  assert.deepEqual(handled, [0, 1, 2]);
  assert.equal(bus.stats().total_published, 3);
});

test('idle resolves once every event is handled, including chained publishes and retries after a backoff', async () => {
  const bus = createBus<Events>();
  const ran: number[] = [];
  const done: number[] = [];
  const attempts = new Map<number, number>();
  bus.subscribe(
    'runner',
    'job.run',
    async (event) => {
      await sleep(Math.floor(Math.random() * 3));
      ran.push(event.data.n);
      await bus.publish('job.done', { n: event.data.n });
    },
    { concurrency: 4 },
  );
  bus.subscribe('recorder', 'job.done', async (event) => {
    await sleep(Math.floor(Math.random() * 2));
    done.push(event.data.n);
  });
  bus.subscribe(
    'flaky',
    'job.run',
    (event) => {
      const attempt = (attempts.get(event.data.n) ?? 0) + 1;
      attempts.set(event.data.n, attempt);
      if (attempt === 1 && event.data.n % 5 === 0) throw new Error('first try fails');
    },
    { concurrency: 8, retry: { attempts: 2, initialDelay: 20, jitter: false } },
  );
  for (let n = 0; n < 50; n++) await bus.publish('job.run', { n });
  await bus.idle();

  assert.deepEqual(
    [...ran].sort((a, b) => a - b),
    range(0, 50),
  );
  assert.deepEqual(
    [...done].sort((a, b) => a - b),
    range(0, 50),
  );
  const flaky = bus.stats().subscriptions.find((each) => each.name === 'flaky')!;
  assert.equal(flaky.completed, 50);
  assert.equal(flaky.retried, 10);
  assert.equal(bus.stats().queue_size, 0);
  assert.deepEqual(bus.inflight(), []);
  await bus.close();
});

test('idle resolves at once on a bus with nothing to do, and waits for a slow setup before that', async () => {
  const bus = createBus<Events>();
  assert.equal(await hasSettled(bus.idle()), true);

  const handled: number[] = [];
  const handle = bus.subscribe(
    'late-start',
    'job.run',
    (event) => {
      handled.push(event.data.n);
    },
    { setup: () => sleep(20).then(() => undefined) },
  );
  for (let n = 0; n < 5; n++) await bus.publish('job.run', { n });
  const idle = bus.idle();
  assert.equal(await hasSettled(idle), false, 'idle resolved while setup was still running');
  await idle;
  await handle.ready;
  assert.deepEqual(handled, [0, 1, 2, 3, 4]);
  await bus.close();
});

test('idle waits for a subscription that is still draining after unsubscribe', async () => {
  const bus = createBus<Events>();
  const first = gate();
  const started = gate();
  const handled: number[] = [];
  const handle = bus.subscribe('worker', 'job.run', async (event) => {
    if (event.data.n === 0) {
      started.open();
      await first.opened;
    }
    handled.push(event.data.n);
  });
  for (let n = 0; n < 3; n++) await bus.publish('job.run', { n });
  await started.opened;
  const unsubscribed = handle.unsubscribe();

  const idle = bus.idle();
  const idleEarly = await hasSettled(idle);
  first.open();
  await Promise.all([idle, unsubscribed]);
  assert.equal(idleEarly, false, 'idle resolved while events 0..2 were still being handled');
  assert.deepEqual(handled, [0, 1, 2]);
  await bus.close();
});

test('close cancels a hung subscription that is still draining after unsubscribe, and its unsubscribe resolves', async () => {
  const bus = createBus<Events>();
  const started = gate();
  let signal: AbortSignal | undefined;
  const log: string[] = [];
  const handle = bus.subscribe(
    'stuck',
    'job.run',
    async (_event, context) => {
      signal = context.signal;
      started.open();
      await new Promise(() => {});
    },
    { teardown: () => void log.push('teardown') },
  );
  const receipt = await bus.publish('job.run', { n: 0 });
  await started.opened;
  const unsubscribed = handle.unsubscribe();

  const report = await bus.close({ deadline: 30 });
  const unsubscribeSettled = await hasSettled(unsubscribed);
  const receiptSettled = await hasSettled(receipt.settled());

  assert.equal(report.drained, false, 'close reported drained while a handler hung');
  assert.deepEqual(report.unfinished, [
    { subscription: 'stuck', eventId: receipt.id, type: 'job.run' },
  ]);
  assert.equal(receiptSettled, true, 'the hung event was never settled');
  assert.equal(signal?.aborted, true);
  assert.deepEqual(log, ['teardown']);
  assert.equal(unsubscribeSettled, true, 'unsubscribe never resolved');
});

test('a second close waits for the first to finish instead of reporting drained at once', async () => {
  const bus = createBus<Events>();
  const first = gate();
  const started = gate();
  const log: string[] = [];
  bus.subscribe(
    'worker',
    'job.run',
    async () => {
      started.open();
      await first.opened;
    },
    { teardown: () => void log.push('teardown') },
  );
  await bus.publish('job.run', { n: 0 });
  await started.opened;

  const firstClose = bus.close({ deadline: 2_000 });
  const secondClose = bus.close({ deadline: 2_000 });
  const secondEarly = await hasSettled(secondClose);
  first.open();
  const [one, two] = await Promise.all([firstClose, secondClose]);

  assert.deepEqual(one, { drained: true, unfinished: [] });
  assert.deepEqual(two, { drained: true, unfinished: [] });
  assert.deepEqual(log, ['teardown']);
  assert.equal(secondEarly, false, 'the second close resolved before teardown had run');
});
