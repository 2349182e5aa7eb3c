// What a bus reports about itself: stats, health and the in-flight watcher.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createBus, skip, type SubscriptionStats } from './index.ts';
import { sleep, until } from '../../test/support/async.ts';

/** A promise the test resolves by hand; `open` lets every waiter through. */
function gate(): { wait: () => Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { wait: () => opened, open };
}

/** The counters of a subscription, without the parts that vary from run to run. */
function counters(stats: SubscriptionStats | undefined) {
  assert.ok(stats !== undefined);
  const { latency: _latency, patterns: _patterns, concurrency: _c, queueLimit: _q, ...rest } = stats;
  return rest;
}

const zero = {
  pending: 0,
  inFlight: 0,
  completed: 0,
  skipped: 0,
  failed: 0,
  retried: 0,
  deadLettered: 0,
  expired: 0,
  dropped: 0,
  cancelled: 0,
};

describe('bus.stats()', () => {
  test('a new bus reports zeros', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));

    const stats = bus.stats();

    assert.equal(stats.total_published, 0);
    assert.equal(stats.total_delivered, 0);
    assert.equal(stats.active_subscribers, 0);
    assert.equal(stats.queue_size, 0);
    assert.deepEqual(stats.events_by_type, {});
    assert.equal(stats.average_delivery_latency_ms, 0);
    assert.ok(stats.uptime_seconds >= 0 && stats.uptime_seconds < 1);
    assert.equal(stats.total_expired, 0);
    assert.equal(stats.total_dropped, 0);
    assert.equal(stats.total_dead_lettered, 0);
    assert.equal(stats.dead_letters, 0);
    assert.deepEqual(stats.subscriptions, []);
  });

  test('stats count published and delivered events by type and measure delivery latency', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    bus.subscribe('all-orders', 'orders.*', async () => {
      await sleep(1);
      return 'ok';
    });
    bus.subscribe('created-only', 'orders.created', () => skip);
    bus.subscribe('invoices', 'invoices.*', () => 'never called');

    const receipts = [
      await bus.publish('orders.created', 1),
      await bus.publish('orders.created', 2),
      await bus.publish('orders.paid', 3),
      await bus.publish('nobody.listens', 4),
    ];
    await Promise.all(receipts.map((receipt) => receipt.settled()));
    await bus.idle();
    const stats = bus.stats();

    assert.equal(stats.total_published, 4);
    // Three completed by all-orders and two skipped by created-only.
    assert.equal(stats.total_delivered, 5);
    assert.equal(stats.active_subscribers, 3);
    assert.equal(stats.queue_size, 0);
    assert.deepEqual(stats.events_by_type, {
      'orders.created': 2,
      'orders.paid': 1,
      'nobody.listens': 1,
    });
    assert.ok(stats.average_delivery_latency_ms > 0, `${stats.average_delivery_latency_ms} ms`);
    assert.deepEqual(
      stats.subscriptions.map((each) => each.name),
      ['all-orders', 'created-only', 'invoices'],
    );
    assert.deepEqual(stats.subscriptions[0]!.patterns, ['orders.*']);
    assert.deepEqual(counters(stats.subscriptions[0]), {
      ...zero,
      name: 'all-orders',
      completed: 3,
    });
    assert.deepEqual(counters(stats.subscriptions[1]), {
      ...zero,
      name: 'created-only',
      skipped: 2,
    });
    assert.deepEqual(counters(stats.subscriptions[2]), { ...zero, name: 'invoices' });
  });

  test('uptime_seconds grows with time', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const before = bus.stats().uptime_seconds;

    await sleep(25);

    const after = bus.stats().uptime_seconds;
    assert.ok(after - before >= 0.02, `uptime went from ${before} to ${after}`);
  });

  test('a subscription counts completed, skipped, failed, retried and dead-lettered handling', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const handle = bus.subscribe(
      'worker',
      'job.run',
      (event) => {
        if (event.data === 'skip') return skip;
        if (event.data === 'fail') throw new Error('always fails');
        return event.data;
      },
      { retry: { attempts: 3, initialDelay: 1, maxDelay: 5 } },
    );

    for (const data of ['ok', 'ok', 'skip', 'fail'])
      await (await bus.publish('job.run', data)).settled();
    await bus.idle();

    assert.deepEqual(counters(handle.stats()), {
      ...zero,
      name: 'worker',
      completed: 2,
      skipped: 1,
      failed: 3,
      retried: 2,
      deadLettered: 1,
    });
    const stats = bus.stats();
    assert.equal(stats.total_delivered, 3);
    assert.equal(stats.total_dead_lettered, 1);
    assert.equal(stats.dead_letters, 1);
    assert.equal(stats.events_by_type['busbar.dead_letter'], 1);
  });

  test('pending counts queued events and inFlight counts running ones', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const one = gate();
    const two = gate();
    const serial = bus.subscribe('serial', 'job.run', () => one.wait());
    const parallel = bus.subscribe('parallel', 'job.run', () => two.wait(), { concurrency: 2 });

    const receipts = [
      await bus.publish('job.run', 1),
      await bus.publish('job.run', 2),
      await bus.publish('job.run', 3),
    ];
    await until(() => serial.stats().inFlight === 1 && parallel.stats().inFlight === 2);

    assert.equal(serial.stats().pending, 2);
    assert.equal(parallel.stats().pending, 1);
    assert.equal(bus.stats().queue_size, 3);

    one.open();
    two.open();
    await Promise.all(receipts.map((receipt) => receipt.settled()));
    assert.deepEqual(counters(serial.stats()), { ...zero, name: 'serial', completed: 3 });
    assert.deepEqual(counters(parallel.stats()), { ...zero, name: 'parallel', completed: 3 });
    assert.equal(bus.stats().queue_size, 0);
  });

  test('an event waiting to be retried counts as in flight', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    let calls = 0;
    const handle = bus.subscribe(
      'retrying',
      'job.run',
      () => {
        calls++;
        if (calls === 1) throw new Error('first try fails');
        return 'done';
      },
      { retry: { attempts: 2, initialDelay: 30, maxDelay: 30, jitter: false } },
    );

    const receipt = await bus.publish('job.run', null);
    await until(() => calls === 1);
    await sleep(5);

    assert.equal(handle.stats().inFlight, 1);
    assert.equal(handle.stats().pending, 0);
    assert.equal(handle.stats().retried, 1);
    await receipt.settled();
    assert.equal(handle.stats().inFlight, 0);
    assert.equal(handle.stats().completed, 1);
  });

  test('dropped and expired events are counted per subscription and in the bus totals', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const slow = gate();
    const handled: unknown[] = [];
    const viewer = bus.subscribe(
      'viewer',
      'frame.*',
      async (event) => {
        handled.push(event.data);
        if (event.data === 1) await slow.wait();
      },
      { queueLimit: 2, overflow: 'drop-oldest' },
    );

    const first = await bus.publish('frame.shown', 1);
    await until(() => handled.length === 1);
    const second = await bus.publish('frame.shown', 2);
    const third = await bus.publish('frame.shown', 3, { ttl: 1 });
    const fourth = await bus.publish('frame.shown', 4);
    await sleep(5);
    slow.open();

    assert.deepEqual(await second.settled(), [{ subscription: 'viewer', status: 'dropped' }]);
    assert.deepEqual(await third.settled(), [{ subscription: 'viewer', status: 'expired' }]);
    assert.equal((await first.settled())[0]?.status, 'completed');
    assert.equal((await fourth.settled())[0]?.status, 'completed');
    assert.deepEqual(handled, [1, 4]);
    assert.deepEqual(counters(viewer.stats()), {
      ...zero,
      name: 'viewer',
      completed: 2,
      expired: 1,
      dropped: 1,
    });
    const stats = bus.stats();
    assert.equal(stats.total_dropped, 1);
    assert.equal(stats.total_expired, 1);
  });

  test('handling latency percentiles are positive and p50 is at most p99', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const handle = bus.subscribe('timed', 'job.run', async (event) => {
      await sleep(event.data === 'slow' ? 20 : 1);
    });

    for (let i = 0; i < 9; i++) await bus.publish('job.run', 'fast');
    await bus.publish('job.run', 'slow');
    await bus.idle();
    const { latency } = handle.stats();

    assert.ok(latency.p50 > 0, `p50 ${latency.p50}`);
    assert.ok(latency.p50 <= latency.p99, `p50 ${latency.p50} ≤ p99 ${latency.p99}`);
    assert.ok(latency.p99 >= 18, `p99 ${latency.p99} reflects the slow event`);
    assert.ok(latency.p50 < 18, `p50 ${latency.p50} reflects the fast events`);
    assert.ok(latency.mean > 0);
  });

  test('with stats off, delivery and counters still work but latency stays 0', async (t) => {
    const bus = createBus({ stats: false });
    t.after(() => bus.close({ deadline: 50 }));
    const handle = bus.subscribe('worker', 'job.run', async (event) => {
      await sleep(2);
      return event.data;
    });

    const receipt = await bus.publish('job.run', 'payload');

    assert.deepEqual(await receipt.settled(), [
      { subscription: 'worker', status: 'completed', value: 'payload', attempts: 1 },
    ]);
    const stats = bus.stats();
    assert.equal(stats.total_published, 1);
    assert.equal(stats.total_delivered, 1);
    assert.equal(stats.average_delivery_latency_ms, 0);
    assert.equal(handle.stats().completed, 1);
    assert.deepEqual(handle.stats().latency, { p50: 0, p99: 0, mean: 0 });
  });

  test('totals survive the unsubscription of the subscriptions that produced them', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const handle = bus.subscribe('short-lived', 'job.run', () => 'done');
    await (await bus.publish('job.run', null)).settled();

    await handle.unsubscribe();
    const stats = bus.stats();

    assert.equal(stats.active_subscribers, 0);
    assert.deepEqual(stats.subscriptions, []);
    assert.equal(stats.total_published, 1);
    assert.equal(stats.total_delivered, 1);
  });
});

describe('bus.health()', () => {
  test('an idle bus and a bus handling events normally are ok', async (t) => {
    const bus = createBus({ stuckAfter: 1000 });
    t.after(() => bus.close({ deadline: 50 }));
    const open = gate();
    bus.subscribe('worker', 'job.run', () => open.wait());

    assert.deepEqual(bus.health(), { status: 'ok', problems: [] });
    const receipt = await bus.publish('job.run', null);
    await sleep(5);
    assert.deepEqual(bus.health(), { status: 'ok', problems: [] });
    open.open();
    await receipt.settled();
    assert.deepEqual(bus.health(), { status: 'ok', problems: [] });
  });

  test('a handler running longer than stuckAfter makes its subscription stuck', async (t) => {
    const bus = createBus({ stuckAfter: 15 });
    t.after(() => bus.close({ deadline: 50 }));
    const open = gate();
    bus.subscribe('slow', 'job.run', () => open.wait(), { timeout: 0 });
    bus.subscribe('fast', 'job.run', () => 'done');

    const receipt = await bus.publish('job.run', null);
    await sleep(30);
    const health = bus.health();

    assert.equal(health.status, 'degraded');
    assert.equal(health.problems.length, 1);
    const [problem] = health.problems;
    assert.equal(problem?.subscription, 'slow');
    assert.equal(problem?.code, 'stuck');
    assert.match(problem?.message ?? '', /"slow" has been running for \d+ ms/);

    open.open();
    await receipt.settled();
    assert.deepEqual(bus.health(), { status: 'ok', problems: [] });
  });

  test('a handler running longer than stuckAfter is stuck even when its timeout is much longer', async (t) => {
    const bus = createBus({ stuckAfter: 15 });
    t.after(() => bus.close({ deadline: 50 }));
    const open = gate();
    // The default 30 s timeout: the handler is far from timing out, but stuck.
    bus.subscribe('slow', 'job.run', () => open.wait());

    const receipt = await bus.publish('job.run', null);
    await sleep(40);
    const health = bus.health();

    open.open();
    await receipt.settled();
    assert.equal(health.status, 'degraded');
    assert.deepEqual(
      health.problems.map(({ subscription, code }) => ({ subscription, code })),
      [{ subscription: 'slow', code: 'stuck' }],
    );
  });

  test('a queue at 80 % of its limit is reported as near its limit', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const open = gate();
    const handle = bus.subscribe('bounded', 'job.run', () => open.wait(), { queueLimit: 5 });

    const receipts = [await bus.publish('job.run', 0)];
    await until(() => handle.stats().inFlight === 1);
    for (let i = 1; i <= 3; i++) receipts.push(await bus.publish('job.run', i));
    assert.equal(handle.stats().pending, 3);
    assert.deepEqual(bus.health(), { status: 'ok', problems: [] }, '3 of 5 is fine');

    receipts.push(await bus.publish('job.run', 4));
    assert.equal(handle.stats().pending, 4);
    assert.deepEqual(bus.health(), {
      status: 'degraded',
      problems: [
        {
          subscription: 'bounded',
          code: 'queue-near-limit',
          message: '"bounded" has 4 of 5 events queued',
        },
      ],
    });

    open.open();
    await Promise.all(receipts.map((receipt) => receipt.settled()));
    assert.deepEqual(bus.health(), { status: 'ok', problems: [] });
  });

  test('a closed bus reports closed', async () => {
    const bus = createBus();

    await bus.close({ deadline: 50 });

    assert.equal(bus.closed, true);
    assert.equal(bus.health().status, 'closed');
    assert.deepEqual(
      bus.health().problems.map((problem) => problem.code),
      ['closed'],
    );
  });
});

describe('the in-flight watcher', () => {
  test('inflight lists unsettled events with where each subscription stands', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const open = gate();
    const fast = bus.subscribe('fast', 'job.*', (event) => event.data);
    bus.subscribe('picky', 'job.*', () => skip);
    bus.subscribe('slow', 'job.*', () => open.wait());

    const first = await bus.publish('job.run', 1);
    const second = await bus.publish('job.run', 2);
    await until(() => fast.stats().completed === 2);
    await sleep(1);

    assert.deepEqual(bus.inflight(), [
      {
        event: first.event,
        subscriptions: { fast: 'completed', picky: 'skipped', slow: 'pending' },
      },
      {
        event: second.event,
        subscriptions: { fast: 'completed', picky: 'skipped', slow: 'pending' },
      },
    ]);

    open.open();
    await Promise.all([first.settled(), second.settled()]);
    assert.deepEqual(bus.inflight(), []);
  });

  test('inflight lists an event only with the subscriptions it was sent to', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const open = gate();
    bus.subscribe('a', 'job.*', () => open.wait());
    bus.subscribe('b', 'job.*', () => open.wait());

    const receipt = await bus.publish('job.run', null, { to: ['b'] });
    await sleep(1);

    assert.deepEqual(bus.inflight(), [{ event: receipt.event, subscriptions: { b: 'pending' } }]);
    open.open();
    await receipt.settled();
  });

  test('fetch returns an in-flight event by id and undefined once it has settled', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const open = gate();
    bus.subscribe('slow', 'job.*', () => open.wait());

    const running = await bus.publish('job.run', 'running');
    const queued = await bus.publish('job.run', 'queued');
    await sleep(1);

    assert.equal(bus.fetch(running.id), running.event);
    assert.equal(bus.fetch(queued.id), queued.event);
    assert.equal(bus.fetch('no-such-id'), undefined);

    open.open();
    await Promise.all([running.settled(), queued.settled()]);
    assert.equal(bus.fetch(running.id), undefined);
    assert.equal(bus.fetch(queued.id), undefined);
  });
});
