// How a handler's outcome settles a delivery: completed, skipped, or failed,
// retried with backoff and dead-lettered.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type BusbarEvent,
  BusbarError,
  createBus,
  DEAD_LETTER_TOPIC,
  type DeadLetterNotice,
  type HandlerContext,
  skip,
} from './index.ts';
import { sleep, until } from '../../test/support/async.ts';

const fastRetry = { attempts: 3, initialDelay: 1, maxDelay: 5 };

/** Records unhandled rejections while `body` runs (and a little after). */
async function withoutUnhandledRejections(body: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = [];
  const listener = (reason: unknown) => seen.push(reason);
  process.on('unhandledRejection', listener);
  try {
    await body();
    // Unhandled rejections are reported after the microtask queue drains.
    await sleep(10);
  } finally {
    process.off('unhandledRejection', listener);
  }
  return seen;
}

describe('a handler that returns', () => {
  test('a returned value completes the delivery and is its result', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    bus.subscribe('sync', 'order.created', (event) => `mailed ${(event.data as { id: string }).id}`);
    bus.subscribe('async', 'order.created', async (event) => {
      await sleep(1);
      return { total: (event.data as { total: number }).total * 2 };
    });

    const receipt = await bus.publish('order.created', { id: 'o-1', total: 21 });

    assert.deepEqual(receipt.recipients, ['sync', 'async']);
    assert.deepEqual(await receipt.settled(), [
      { subscription: 'sync', status: 'completed', value: 'mailed o-1', attempts: 1 },
      { subscription: 'async', status: 'completed', value: { total: 42 }, attempts: 1 },
    ]);
    assert.equal(bus.deadLetters().length, 0);
  });

  test('returning skip settles the delivery as skipped and does not retry it', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    let calls = 0;
    const handle = bus.subscribe(
      'picky',
      'order.created',
      async () => {
        calls++;
        return skip;
      },
      { retry: fastRetry },
    );

    const receipt = await bus.publish('order.created', { id: 'o-1' });

    assert.deepEqual(await receipt.settled(), [
      { subscription: 'picky', status: 'skipped', attempts: 1 },
    ]);
    assert.equal(calls, 1);
    const stats = handle.stats();
    assert.equal(stats.skipped, 1);
    assert.equal(stats.completed, 0);
    assert.equal(stats.failed, 0);
    assert.equal(bus.deadLetters().length, 0);
  });

  test('a handler that fails and then succeeds on a retry completes with the attempt count', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const attempts: number[] = [];
    bus.subscribe(
      'flaky',
      'job.run',
      (_event, context) => {
        attempts.push(context.attempt);
        if (context.attempt < 3) throw new Error(`attempt ${context.attempt} failed`);
        return 'done';
      },
      { retry: fastRetry },
    );

    const receipt = await bus.publish('job.run', null);

    assert.deepEqual(await receipt.settled(), [
      { subscription: 'flaky', status: 'completed', value: 'done', attempts: 3 },
    ]);
    assert.deepEqual(attempts, [1, 2, 3]);
    assert.equal(bus.deadLetters().length, 0);
  });
});

interface FailureCase {
  name: string;
  handler: (event: BusbarEvent, context: HandlerContext) => unknown;
  timeout?: number;
  /** Checks the error the delivery failed with. */
  check(error: Error): void;
  code?: string;
}

const thrown = new Error('sync boom');
const rejected = new Error('async boom');

const failures: FailureCase[] = [
  {
    name: 'throws synchronously',
    handler: () => {
      throw thrown;
    },
    check: (error) => assert.equal(error, thrown),
  },
  {
    name: 'rejects',
    handler: () => Promise.reject(rejected),
    check: (error) => assert.equal(error, rejected),
  },
  {
    name: 'throws a string instead of an Error',
    handler: () => {
      throw 'plain string';
    },
    code: 'BUSBAR_ERR_INTERNAL',
    check: (error) => {
      assert.ok(error instanceof BusbarError);
      assert.equal(error.code, 'BUSBAR_ERR_INTERNAL');
      assert.match(error.message, /plain string/);
      assert.equal(error.cause, 'plain string');
    },
  },
  {
    name: 'hangs past its timeout',
    // Never settles on its own; the subscription's timeout has to end it.
    handler: () => new Promise(() => {}),
    timeout: 15,
    code: 'BUSBAR_ERR_HANDLER_TIMEOUT',
    check: (error) => {
      assert.ok(error instanceof BusbarError);
      assert.equal(error.code, 'BUSBAR_ERR_HANDLER_TIMEOUT');
      assert.match(error.message, /did not settle within 15 ms/);
    },
  },
];

describe('a handler that fails', () => {
  for (const failure of failures) {
    test(`a handler that ${failure.name} is tried retry.attempts times, then dead-lettered and announced`, async (t) => {
      const bus = createBus();
      t.after(() => bus.close({ deadline: 50 }));
      const notices: BusbarEvent[] = [];
      bus.subscribe(DEAD_LETTER_TOPIC, DEAD_LETTER_TOPIC, (event) => {
        notices.push(event);
      });
      let calls = 0;
      const handle = bus.subscribe(
        'worker',
        'job.run',
        (event, context) => {
          calls++;
          return failure.handler(event, context);
        },
        { retry: fastRetry, timeout: failure.timeout ?? 1000 },
      );

      const receipt = await bus.publish('job.run', { n: 1 });
      const [result] = await receipt.settled();

      assert.equal(calls, 3);
      assert.equal(result?.subscription, 'worker');
      assert.equal(result?.status, 'failed');
      assert.ok(result?.status === 'failed');
      assert.equal(result.attempts, 3);
      failure.check(result.error);

      const letters = bus.deadLetters();
      assert.equal(letters.length, 1);
      const letter = letters[0]!;
      assert.equal(letter.subscription, 'worker');
      assert.equal(letter.event, receipt.event);
      assert.equal(letter.event.id, receipt.id);
      assert.equal(letter.error, result.error);
      assert.equal(letter.attempts, 3);
      assert.ok(!Number.isNaN(Date.parse(letter.failedAt)));

      await until(() => notices.length > 0);
      await bus.idle();
      assert.equal(notices.length, 1);
      const notice = notices[0]!;
      assert.equal(notice.type, DEAD_LETTER_TOPIC);
      assert.equal(notice.subject, 'worker');
      const expected: DeadLetterNotice = {
        deadLetterId: letter.id,
        subscription: 'worker',
        eventId: receipt.id,
        eventType: 'job.run',
        attempts: 3,
        error: {
          name: result.error.name,
          message: result.error.message,
          ...(failure.code === undefined ? {} : { code: failure.code }),
        },
      };
      assert.deepEqual(notice.data, expected);

      const stats = handle.stats();
      assert.equal(stats.failed, 3);
      assert.equal(stats.retried, 2);
      assert.equal(stats.deadLettered, 1);
      assert.equal(stats.completed, 0);
    });
  }

  test('a handler that settles after its timeout does not change the failed result', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    let calls = 0;
    const handle = bus.subscribe(
      'late',
      'job.run',
      async () => {
        calls++;
        await sleep(30);
        return 'too late';
      },
      { timeout: 5, retry: { attempts: 1 } },
    );

    const receipt = await bus.publish('job.run', null);
    const [result] = await receipt.settled();
    await sleep(40);

    assert.equal(result?.status, 'failed');
    assert.equal(calls, 1);
    const stats = handle.stats();
    assert.equal(stats.completed, 0);
    assert.equal(stats.failed, 1);
    assert.equal(stats.deadLettered, 1);
    assert.equal(stats.inFlight, 0);
    assert.equal(bus.deadLetters().length, 1);
  });

  test('a handler that settles within its timeout completes', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const handle = bus.subscribe(
      'in-time',
      'job.run',
      async (_event, context) => {
        await sleep(15);
        return context.signal.aborted;
      },
      { timeout: 60, retry: { attempts: 1 } },
    );

    const receipt = await bus.publish('job.run', null);

    assert.deepEqual(await receipt.settled(), [
      { subscription: 'in-time', status: 'completed', value: false, attempts: 1 },
    ]);
    assert.equal(handle.stats().failed, 0);
  });

  test("a timed-out attempt's signal is aborted with the timeout error", async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const signals: AbortSignal[] = [];
    bus.subscribe(
      'slow',
      'job.run',
      (_event, context) => {
        signals.push(context.signal);
        // A well-behaved handler stops when its signal aborts; this one does not.
        return new Promise(() => {});
      },
      { timeout: 10, retry: { attempts: 2, initialDelay: 1, maxDelay: 5 } },
    );

    const receipt = await bus.publish('job.run', null);
    const [result] = await receipt.settled();

    assert.equal(result?.status, 'failed');
    assert.equal(signals.length, 2);
    for (const signal of signals) {
      assert.equal(signal.aborted, true);
      assert.ok(signal.reason instanceof BusbarError);
      assert.equal(signal.reason.code, 'BUSBAR_ERR_HANDLER_TIMEOUT');
    }
    assert.notEqual(signals[0], signals[1], 'each attempt has its own signal');
  });

  test('a signal first read after its attempt timed out is already aborted', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    let abortedWhenRead: boolean | undefined;
    bus.subscribe(
      'late-reader',
      'job.run',
      async (_event, context) => {
        await sleep(30);
        // The handler looks at its signal only now, well past its 5 ms timeout.
        abortedWhenRead = context.signal.aborted;
      },
      { timeout: 5, retry: { attempts: 1 } },
    );

    const receipt = await bus.publish('job.run', null);
    const [result] = await receipt.settled();
    await until(() => abortedWhenRead !== undefined);

    assert.equal(result?.status, 'failed');
    assert.equal(abortedWhenRead, true);
  });

  test('a handler that never settles with the timeout disabled stays pending and in flight', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 10 }));
    let calls = 0;
    let signal: AbortSignal | undefined;
    const handle = bus.subscribe(
      'forever',
      'job.run',
      (_event, context) => {
        calls++;
        signal = context.signal;
        return new Promise(() => {});
      },
      { timeout: 0, retry: fastRetry },
    );

    const receipt = await bus.publish('job.run', { n: 1 });
    let settled = false;
    void receipt.settled().then(() => {
      settled = true;
    });
    await sleep(40);

    assert.equal(settled, false);
    assert.equal(calls, 1);
    assert.equal(signal?.aborted, false);
    assert.deepEqual(bus.inflight(), [
      { event: receipt.event, subscriptions: { forever: 'pending' } },
    ]);
    assert.equal(bus.fetch(receipt.id), receipt.event);
    assert.equal(handle.stats().inFlight, 1);
    assert.equal(bus.deadLetters().length, 0);
  });

  test('retry delays grow by the backoff factor', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const calledAt: number[] = [];
    bus.subscribe(
      'backoff',
      'job.run',
      () => {
        calledAt.push(performance.now());
        throw new Error('still failing');
      },
      { retry: { attempts: 4, initialDelay: 8, maxDelay: 1000, factor: 2, jitter: false } },
    );

    const receipt = await bus.publish('job.run', null);
    await receipt.settled();

    assert.equal(calledAt.length, 4);
    const gaps = calledAt.slice(1).map((at, index) => at - calledAt[index]!);
    // Expected waits: 8, 16 and 32 ms (timers may fire up to ~1 ms early on the clock).
    assert.ok(gaps[0]! >= 7, `first retry after ${gaps[0]} ms`);
    assert.ok(gaps[1]! >= 15, `second retry after ${gaps[1]} ms`);
    assert.ok(gaps[2]! >= 31, `third retry after ${gaps[2]} ms`);
    assert.ok(gaps[1]! > gaps[0]! && gaps[2]! > gaps[1]!, `gaps ${gaps.join(', ')} grow`);
  });

  test('retry delays are capped by maxDelay', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const calledAt: number[] = [];
    bus.subscribe(
      'capped',
      'job.run',
      () => {
        calledAt.push(performance.now());
        throw new Error('still failing');
      },
      { retry: { attempts: 4, initialDelay: 5, maxDelay: 10, factor: 100, jitter: false } },
    );

    const receipt = await bus.publish('job.run', null);
    await receipt.settled();

    assert.equal(calledAt.length, 4);
    const gaps = calledAt.slice(1).map((at, index) => at - calledAt[index]!);
    // Uncapped, the last two waits would be 500 ms and 50 s.
    assert.ok(gaps[1]! >= 9 && gaps[1]! < 200, `second retry after ${gaps[1]} ms`);
    assert.ok(gaps[2]! >= 9 && gaps[2]! < 200, `third retry after ${gaps[2]} ms`);
  });
});

describe('failures are contained', () => {
  test("one subscriber failing never changes another subscriber's result for the same event", async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    let goodCalls = 0;
    let badCalls = 0;
    bus.subscribe('good', 'order.*', (event) => {
      goodCalls++;
      return `saw ${event.type}`;
    });
    bus.subscribe(
      'bad',
      'order.*',
      async () => {
        badCalls++;
        throw new Error('bad subscriber');
      },
      { retry: fastRetry },
    );
    bus.subscribe(
      'worse',
      'order.*',
      () => {
        throw 'not even an error';
      },
      { retry: fastRetry },
    );

    const unhandled = await withoutUnhandledRejections(async () => {
      const receipt = await bus.publish('order.created', { id: 'o-1' });
      const results = await receipt.settled();
      assert.deepEqual(results[0], {
        subscription: 'good',
        status: 'completed',
        value: 'saw order.created',
        attempts: 1,
      });
      assert.equal(results[1]?.status, 'failed');
      assert.equal(results[2]?.status, 'failed');
      await bus.idle();
    });

    assert.deepEqual(unhandled, []);
    assert.equal(goodCalls, 1);
    assert.equal(badCalls, 3);
    assert.deepEqual(
      bus
        .deadLetters()
        .map((letter) => letter.subscription)
        .sort(),
      ['bad', 'worse'],
    );
  });

  test('publish resolves with a receipt even when every handler fails', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    bus.subscribe(
      'sync-thrower',
      'job.run',
      () => {
        throw new Error('sync');
      },
      { retry: { attempts: 1 } },
    );
    bus.subscribe('async-thrower', 'job.run', () => Promise.reject(new Error('async')), {
      retry: { attempts: 1 },
    });

    const unhandled = await withoutUnhandledRejections(async () => {
      const receipts = await Promise.all([
        bus.publish('job.run', 1),
        bus.publish('job.run', 2),
        bus.publish('job.run', 3),
      ]);
      for (const receipt of receipts) {
        assert.deepEqual(receipt.recipients, ['sync-thrower', 'async-thrower']);
        const results = await receipt.settled();
        assert.deepEqual(
          results.map((result) => result.status),
          ['failed', 'failed'],
        );
      }
      await bus.idle();
    });

    assert.deepEqual(unhandled, []);
    assert.equal(bus.deadLetters().length, 6);
  });
});

describe('dead letters', () => {
  test('redrive re-delivers a dead letter to its own subscription only and removes it', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    let broken = true;
    const flakySaw: string[] = [];
    const auditSaw: string[] = [];
    bus.subscribe(
      'flaky',
      'order.*',
      (event) => {
        flakySaw.push(event.id);
        if (broken) throw new Error('database down');
        return 'stored';
      },
      { retry: { attempts: 2, initialDelay: 1, maxDelay: 5 } },
    );
    bus.subscribe('audit', 'order.*', (event) => {
      auditSaw.push(event.id);
      return 'audited';
    });

    const receipt = await bus.publish('order.created', { id: 'o-1' });
    await receipt.settled();
    assert.equal(bus.deadLetters().length, 1);
    assert.deepEqual(flakySaw, [receipt.id, receipt.id]);

    broken = false;
    const redriven = await bus.redrive();

    assert.equal(redriven.length, 1);
    const again = redriven[0]!;
    assert.equal(again.id, receipt.id);
    assert.deepEqual(again.recipients, ['flaky']);
    assert.deepEqual(await again.settled(), [
      { subscription: 'flaky', status: 'completed', value: 'stored', attempts: 1 },
    ]);
    assert.deepEqual(flakySaw, [receipt.id, receipt.id, receipt.id]);
    await bus.idle();
    assert.deepEqual(auditSaw, [receipt.id]);
    assert.deepEqual(bus.deadLetters(), []);
  });

  test('redrive with a subscription filter leaves the other dead letters in place', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const retry = { attempts: 1 };
    bus.subscribe(
      'a',
      'job.run',
      () => {
        throw new Error('a failed');
      },
      { retry },
    );
    bus.subscribe(
      'b',
      'job.run',
      () => {
        throw new Error('b failed');
      },
      { retry },
    );

    await (await bus.publish('job.run', null)).settled();
    assert.equal(bus.deadLetters().length, 2);

    const redriven = await bus.redrive({ subscription: 'a' });
    assert.equal(redriven.length, 1);
    assert.deepEqual(redriven[0]!.recipients, ['a']);
    await redriven[0]!.settled();

    // 'a' failed again, so it has a new dead letter; 'b' keeps its original one.
    const letters = bus.deadLetters();
    assert.deepEqual(letters.map((letter) => letter.subscription).sort(), ['a', 'b']);
    assert.equal(bus.deadLetters({ subscription: 'b' }).length, 1);
  });

  test('concurrent redrives deliver each dead letter once', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    let broken = true;
    let calls = 0;
    bus.subscribe(
      'flaky',
      'job.run',
      () => {
        calls++;
        if (broken) throw new Error('database down');
        return 'stored';
      },
      { retry: { attempts: 1 } },
    );
    await (await bus.publish('job.run', null)).settled();
    assert.equal(bus.deadLetters().length, 1);
    broken = false;
    calls = 0;

    const [first, second] = await Promise.all([bus.redrive(), bus.redrive()]);
    await bus.idle();

    assert.equal(first.length + second.length, 1);
    assert.equal(calls, 1);
    assert.deepEqual(bus.deadLetters(), []);
  });

  test('a strict bus still announces dead letters on busbar.dead_letter', async (t) => {
    const errors: string[] = [];
    const bus = createBus({ strict: true, onError: (error) => errors.push(error.message) });
    t.after(() => bus.close({ deadline: 50 }));
    bus.registerTopic('job.run');
    const notices: BusbarEvent[] = [];
    bus.subscribe('dlq', DEAD_LETTER_TOPIC, (event) => {
      notices.push(event);
    });
    bus.subscribe(
      'worker',
      'job.run',
      () => {
        throw new Error('worker failed');
      },
      { retry: { attempts: 1 } },
    );

    await (await bus.publish('job.run', null)).settled();
    await bus.idle();

    assert.equal(bus.deadLetters().length, 1);
    assert.deepEqual(errors, []);
    assert.equal(notices.length, 1);
    assert.equal((notices[0]!.data as DeadLetterNotice).subscription, 'worker');
  });

  test('a dead-letter subscriber that always fails does not make dead letters loop', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const retry = { attempts: 2, initialDelay: 1, maxDelay: 5 };
    let dlqCalls = 0;
    let catchAllCalls = 0;
    bus.subscribe(
      'worker',
      'job.run',
      () => {
        throw new Error('worker failed');
      },
      { retry },
    );
    bus.subscribe(
      'dlq',
      DEAD_LETTER_TOPIC,
      () => {
        dlqCalls++;
        throw new Error('dlq failed');
      },
      { retry },
    );
    bus.subscribe(
      'catch-all',
      '>',
      () => {
        catchAllCalls++;
        throw new Error('catch-all failed');
      },
      { retry },
    );

    await (await bus.publish('job.run', null)).settled();
    await bus.idle();
    await sleep(30);
    await bus.idle();

    // job.run fails in worker and catch-all: two notices. Each notice fails in
    // dlq and catch-all, and those failures are kept but not announced again.
    assert.equal(dlqCalls, 2 * 2);
    assert.equal(catchAllCalls, 2 + 2 * 2);
    const letters = bus.deadLetters();
    assert.equal(letters.length, 6);
    assert.equal(letters.filter((letter) => letter.event.type === DEAD_LETTER_TOPIC).length, 4);
    assert.equal(bus.stats().events_by_type[DEAD_LETTER_TOPIC], 2);

    await sleep(20);
    assert.equal(dlqCalls, 4);
    assert.equal(catchAllCalls, 6);
  });
});
