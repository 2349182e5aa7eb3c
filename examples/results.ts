// Results: what each subscription did with an event, dead letters and their
// redrive, and the in-flight watcher.
import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { createBus, DEAD_LETTER_TOPIC, type DeadLetterNotice, skip } from '../src/index.ts';

type Events = {
  'order.created': { id: string; total: number };
  [DEAD_LETTER_TOPIC]: DeadLetterNotice;
};

const bus = createBus<Events>();
const quickRetry = { attempts: 3, initialDelay: 1, maxDelay: 5 }; // tiny delays for the demo

bus.subscribe('mailer', 'order.created', (event) => `mailed ${event.data.id}`);
bus.subscribe('big-orders', 'order.created', (event) =>
  event.data.total > 100 ? 'flagged' : skip,
);
let flakyCalls = 0;
bus.subscribe(
  'flaky',
  'order.created',
  () => {
    flakyCalls++;
    if (flakyCalls === 1) throw new Error('warehouse busy');
    return 'reserved';
  },
  { retry: quickRetry },
);
let warehouseDown = true;
bus.subscribe(
  'invoicer',
  'order.created',
  async (event, { attempt }) => {
    if (warehouseDown) throw new Error(`invoice service down (attempt ${attempt})`);
    return `invoiced ${event.data.id}`;
  },
  { retry: quickRetry },
);
// Every dead letter is also announced as an event.
const notices: DeadLetterNotice[] = [];
bus.subscribe('alerts', DEAD_LETTER_TOPIC, (event) => {
  notices.push(event.data);
});

// One result per subscription the event was handed to, once all have settled.
const receipt = await bus.publish('order.created', { id: 'o-1', total: 42 });
console.log(receipt.id, '->', receipt.recipients);
const results = await receipt.settled();
for (const result of results) {
  const outcome = 'value' in result ? result.value : 'error' in result ? result.error.message : '';
  const attempts = 'attempts' in result ? result.attempts : 0;
  console.log(result.subscription, result.status, outcome, `(${attempts} attempts)`);
}
assert.deepEqual(results.slice(0, 3), [
  { subscription: 'mailer', status: 'completed', value: 'mailed o-1', attempts: 1 },
  { subscription: 'big-orders', status: 'skipped', attempts: 1 },
  { subscription: 'flaky', status: 'completed', value: 'reserved', attempts: 2 },
]);
const failed = results[3]!;
assert.equal(failed.status, 'failed');
assert.equal(failed.status === 'failed' && failed.error.message, 'invoice service down (attempt 3)');
assert.equal(failed.attempts, 3);

// The failure is now a dead letter: listed, announced, and redrivable.
const [letter] = bus.deadLetters({ subscription: 'invoicer' });
assert.equal(letter!.event.id, receipt.id);
assert.equal(letter!.attempts, 3);
await bus.idle();
assert.equal(notices.length, 1);
console.log('notice:', notices[0]);
assert.equal(notices[0]!.eventId, receipt.id);

// Redrive sends the same event again, to that subscription only.
warehouseDown = false;
const [again] = await bus.redrive({ subscription: 'invoicer' });
assert.equal(again!.id, receipt.id);
assert.deepEqual(again!.recipients, ['invoicer']);
assert.deepEqual(await again!.settled(), [
  { subscription: 'invoicer', status: 'completed', value: 'invoiced o-1', attempts: 1 },
]);
assert.equal(bus.deadLetters().length, 0);

// The in-flight watcher: where an unsettled event stands, per subscription.
let release!: () => void;
const gate = new Promise<void>((resolve) => (release = resolve));
bus.subscribe('slow-report', 'order.created', async () => {
  await gate;
  return 'reported';
});
const pending = await bus.publish('order.created', { id: 'o-2', total: 500 });
await nextTurn(); // let the quick subscribers finish
const [watching] = bus.inflight();
console.log(watching!.subscriptions);
assert.equal(watching!.event.id, pending.id);
assert.deepEqual(watching!.subscriptions, {
  mailer: 'completed',
  'big-orders': 'completed',
  flaky: 'completed',
  invoicer: 'completed',
  'slow-report': 'pending',
});
assert.deepEqual(bus.fetch(pending.id)?.data, { id: 'o-2', total: 500 });
release();
await pending.settled();
assert.equal(bus.fetch(pending.id), undefined); // fetch only sees events in flight
assert.deepEqual(bus.inflight(), []);

await bus.close();
