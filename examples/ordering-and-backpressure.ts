// Ordering and backpressure: per-key order under concurrency, priority
// queues, and what publish meets when a bounded queue is full.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createBus, OverloadError } from '../src/index.ts';

type Events = {
  'account.debited': { account: string; n: number };
  'job.queued': { job: string };
  'price.ticked': { frame: number };
};

const bus = createBus<Events>();

// 1. Partition keys. Concurrency 4 runs different accounts at once, but the
// events of one account (same `key`) run one at a time, in publish order.
const seen = new Map<string, number[]>();
let running = 0;
let mostAtOnce = 0;
bus.subscribe(
  'ledger',
  'account.debited',
  async (event) => {
    running++;
    mostAtOnce = Math.max(mostAtOnce, running);
    // Earlier events take longer: without per-key order, later ones would overtake them.
    await sleep(12 - event.data.n);
    seen.set(event.data.account, [...(seen.get(event.data.account) ?? []), event.data.n]);
    running--;
  },
  { concurrency: 4 },
);
for (let n = 0; n < 12; n++) {
  const account = `acct-${n % 3}`;
  await bus.publish('account.debited', { account, n }, { key: account });
}
await bus.idle();
console.log('per account:', Object.fromEntries(seen), 'most at once:', mostAtOnce);
assert.deepEqual(seen.get('acct-0'), [0, 3, 6, 9]);
assert.deepEqual(seen.get('acct-1'), [1, 4, 7, 10]);
assert.deepEqual(seen.get('acct-2'), [2, 5, 8, 11]);
assert.ok(mostAtOnce > 1 && mostAtOnce <= 3); // three keys: at most three at once

// A gate to hold handlers while we fill their queues.
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

// 2. Priority order: higher `priority` first among the queued events.
const jobsGate = gate();
const jobs: string[] = [];
bus.subscribe(
  'worker',
  'job.queued',
  async (event) => {
    await jobsGate.wait;
    jobs.push(event.data.job);
  },
  { order: 'priority' },
);
await bus.publish('job.queued', { job: 'first (already running)' });
await bus.publish('job.queued', { job: 'low' }, { priority: 1 });
await bus.publish('job.queued', { job: 'urgent' }, { priority: 9 });
await bus.publish('job.queued', { job: 'normal' }, { priority: 5 });
jobsGate.open();
await bus.idle();
console.log('jobs:', jobs);
assert.deepEqual(jobs, ['first (already running)', 'urgent', 'normal', 'low']);

// 3. overflow 'reject': a full queue refuses the publish with an OverloadError.
// queueLimit counts events waiting, not the one being handled.
const strictGate = gate();
bus.subscribe('audit', 'price.ticked', () => strictGate.wait, {
  queueLimit: 2,
  overflow: 'reject',
});
// 4. overflow 'drop-oldest': a full queue drops its oldest event to make room.
const viewerGate = gate();
const frames: number[] = [];
bus.subscribe(
  'viewer',
  'price.ticked',
  async (event) => {
    await viewerGate.wait;
    frames.push(event.data.frame);
  },
  { queueLimit: 2, overflow: 'drop-oldest' },
);

const ticks = [];
ticks.push(await bus.publish('price.ticked', { frame: 1 })); // both start handling it
ticks.push(await bus.publish('price.ticked', { frame: 2 })); // queued (1 of 2)
ticks.push(await bus.publish('price.ticked', { frame: 3 })); // queued (2 of 2)
try {
  await bus.publish('price.ticked', { frame: 4 });
  assert.fail('the audit queue is full: publish should reject');
} catch (error) {
  assert.ok(error instanceof OverloadError);
  console.log(error.code, error.status, error.message);
  assert.equal(error.code, 'BUSBAR_ERR_OVERLOAD');
  assert.equal(error.status, 429);
  assert.deepEqual(error.details, { subscription: 'audit', queueLimit: 2, topic: 'price.ticked' });
}
// A refused event goes to no one, not even the viewer that had a policy to make room.
assert.equal(bus.stats().subscriptions.find((s) => s.name === 'viewer')!.dropped, 0);

strictGate.open(); // audit catches up; the viewer stays stalled
await sleep(1);
ticks.push(await bus.publish('price.ticked', { frame: 4 })); // viewer drops frame 2
ticks.push(await bus.publish('price.ticked', { frame: 5 })); // viewer drops frame 3
viewerGate.open();
await bus.idle();
const viewerResults = await Promise.all(
  ticks.map(async (tick) => (await tick.settled()).find((r) => r.subscription === 'viewer')!.status),
);
console.log('viewer handled frames', frames, 'results', viewerResults);
assert.deepEqual(frames, [1, 4, 5]);
assert.deepEqual(viewerResults, ['completed', 'dropped', 'dropped', 'completed', 'completed']);
assert.equal(bus.stats().total_dropped, 2);

// 5. overflow 'wait' (the default): publish waits until there is room.
const waitGate = gate();
bus.subscribe('archive', 'job.queued', () => waitGate.wait, { queueLimit: 1 });
await bus.publish('job.queued', { job: 'a' }); // archive handles a
await bus.publish('job.queued', { job: 'b' }); // archive queues b: full
let thirdAccepted = false;
const third = bus.publish('job.queued', { job: 'c' }).then(() => (thirdAccepted = true));
await sleep(5);
assert.equal(thirdAccepted, false); // the publisher is held back…
waitGate.open();
await third; // …until archive makes room
assert.equal(thirdAccepted, true);

await bus.close();
