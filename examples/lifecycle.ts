// Lifecycle: a subscription's setup, context and teardown; notify; stats and
// health; and what close() reports when a handler will not finish.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createBus } from '../src/index.ts';

type Events = {
  'doc.added': { id: string; text: string };
  'report.built': { pages: number };
  'report.built.failed': { name: string; message: string; code?: string };
  'export.requested': { format: string };
};

// Errors with no caller to go to (a failing setup or teardown) come here.
const reported: string[] = [];
const bus = createBus<Events>({
  stuckAfter: 20, // a handler running longer than 20 ms makes health() degraded
  onError: (error, origin) => reported.push(`${origin}: ${error.message}`),
});

// setup runs once before the first event; what it returns is the handler's
// context.context. teardown runs once after the subscription drains.
let tornDownWith: number | undefined;
const search = bus.subscribe(
  'search',
  'doc.added',
  (event, { context }) => {
    context.index.set(event.data.id, event.data.text);
    return context.index.size;
  },
  {
    setup: async () => ({ index: new Map<string, string>() }), // open a connection, say
    teardown: (context) => {
      tornDownWith = context.index.size;
    },
  },
);
await search.ready; // resolves once setup has run
await bus.publish('doc.added', { id: 'd-1', text: 'hello' });
const second = await bus.publish('doc.added', { id: 'd-2', text: 'world' });
assert.equal(((await second.settled())[0] as { value: unknown }).value, 2);

// A setup that fails: ready rejects, onError hears of it, health degrades,
// and events routed to the subscription fail at once (no retries).
const mailer = bus.subscribe('mailer', 'doc.added', () => 'sent', {
  setup: () => {
    throw new Error('SMTP unreachable');
  },
});
await assert.rejects(mailer.ready, /SMTP unreachable/);
assert.deepEqual(reported, ['setup of subscription "mailer": SMTP unreachable']);
const health = bus.health();
console.log('health:', health);
assert.equal(health.status, 'degraded');
assert.equal(health.problems[0]!.code, 'setup-failed');
const doomed = await bus.publish('doc.added', { id: 'd-3', text: '!' });
const mailed = (await doomed.settled()).find((result) => result.subscription === 'mailer')!;
assert.equal(mailed.status, 'failed');
assert.equal(mailed.attempts, 1);
await bus.unsubscribe('mailer'); // same as mailer.unsubscribe()
assert.equal(bus.health().status, 'ok');

// notify runs some work and publishes its result, or its error to
// '<topic>.failed', stamping when the work began as `initializedat`.
const built = await bus.notify('report.built', async () => ({ pages: 3 }));
assert.deepEqual(built.event.data, { pages: 3 });
assert.ok(String(built.event.initializedat) <= built.event.time);
const broken = await bus.notify('report.built', () => {
  throw new Error('disk full');
});
console.log(broken.event.type, broken.event.data);
assert.equal(broken.event.type, 'report.built.failed');
assert.deepEqual(broken.event.data, { name: 'Error', message: 'disk full' });

// stats(): bus totals and one entry per subscription.
const stats = bus.stats();
console.log('published', stats.total_published, 'delivered', stats.total_delivered);
console.log('by type', stats.events_by_type);
assert.equal(stats.total_published, 6); // the dead-letter notice is an event too
assert.deepEqual(stats.events_by_type, {
  'doc.added': 3,
  'busbar.dead_letter': 1,
  'report.built': 1,
  'report.built.failed': 1,
});
assert.equal(stats.total_dead_lettered, 1); // mailer's event
const searchStats = stats.subscriptions.find((each) => each.name === 'search')!;
assert.equal(searchStats.completed, 3);
assert.equal(searchStats.pending, 0);

// A handler that ignores its abort signal and never finishes.
let abortedWith: unknown;
bus.subscribe(
  'exporter',
  'export.requested',
  (_event, { signal }) =>
    new Promise(() => {
      signal.addEventListener('abort', () => (abortedWith = signal.reason));
    }),
  { timeout: 0 }, // no per-attempt time limit
);
const hung = await bus.publish('export.requested', { format: 'pdf' });
// A sweep measures running handlers, so health() notices within about 2 × stuckAfter.
let stuck = bus.health();
for (let waited = 0; stuck.status === 'ok' && waited < 1000; waited += 10) {
  await sleep(10);
  stuck = bus.health();
}
console.log('health:', stuck.status, stuck.problems.map((problem) => problem.code));
assert.equal(stuck.status, 'degraded');
assert.equal(stuck.problems[0]!.code, 'stuck');

// close() stops new publishes, lets queued work finish until the deadline
// (default 30 s), cancels the rest, runs teardowns and reports.
const report = await bus.close({ deadline: 50 });
console.log('close report:', report);
assert.deepEqual(report, {
  drained: false,
  unfinished: [{ subscription: 'exporter', eventId: hung.id, type: 'export.requested' }],
});
assert.equal((await hung.settled())[0]!.status, 'cancelled');
assert.equal((abortedWith as { code?: string }).code, 'BUSBAR_ERR_CLOSED');
assert.equal(tornDownWith, 3);
assert.equal(bus.health().status, 'closed');
await assert.rejects(bus.publish('doc.added', { id: 'd-4', text: 'late' }), {
  code: 'BUSBAR_ERR_CLOSED',
});
