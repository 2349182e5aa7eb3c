// Routing in durable mode: per-key order with concurrency, and `to` /
// `broadcast` kept in the log so a subscription reading it later is routed to
// as the publish was.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { gate, range, until } from '../support/async.ts';
import { forEachStore } from './stores.ts';

type Events = { 'order.placed': { n: number }; 'audit.entry': { n: number } };

const KEYS = ['k0', 'k1', 'k2', 'k3'];

/** Handles events out of publish order (a varying number of turns each) and records them per key. */
function keyedRecorder() {
  const byKey: Record<string, number[]> = {};
  const keysRunning = new Set<string>();
  let overlaps = 0;
  let running = 0;
  let mostAtOnce = 0;
  const handler = async (event: { data: { n: number }; partitionkey?: string }) => {
    const key = event.partitionkey!;
    if (keysRunning.has(key)) overlaps++;
    keysRunning.add(key);
    running++;
    mostAtOnce = Math.max(mostAtOnce, running);
    for (let turn = 0; turn < (event.data.n * 7) % 5; turn++) await nextTurn();
    (byKey[key] ??= []).push(event.data.n);
    running--;
    keysRunning.delete(key);
  };
  return { handler, byKey, mostAtOnce: () => mostAtOnce, overlaps: () => overlaps };
}

/** For 60 events published round-robin over KEYS: each key's events in publish order. */
function expectedByKey(): Record<string, number[]> {
  const expected: Record<string, number[]> = {};
  for (const n of range(0, 60)) (expected[KEYS[n % KEYS.length]!] ??= []).push(n);
  return expected;
}

forEachStore((open) => {
  test('events with the same key are handled one at a time, in order, with concurrency 4', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    const recorder = keyedRecorder();
    const handle = bus.subscribe('workers', 'order.*', recorder.handler, { concurrency: 4 });
    await handle.ready;
    await Promise.all(range(0, 60).map((n) => bus.publish('order.placed', { n }, { key: KEYS[n % KEYS.length] })));
    await bus.idle();
    assert.deepEqual(recorder.byKey, expectedByKey());
    assert.equal(recorder.overlaps(), 0, 'two events with the same key ran at once');
    assert.equal(recorder.mostAtOnce(), 4);
  });

  test('a catch-up from the log keeps per-key order too', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    await Promise.all(range(0, 60).map((n) => bus.publish('order.placed', { n }, { key: KEYS[n % KEYS.length] })));
    await log.restart();

    const again = log.bus<Events>();
    const recorder = keyedRecorder();
    again.subscribe('workers', 'order.*', recorder.handler, { concurrency: 4, from: 'beginning' });
    await until(() => Object.values(recorder.byKey).flat().length >= 60);
    await again.idle();
    assert.deepEqual(recorder.byKey, expectedByKey());
    assert.equal(recorder.overlaps(), 0, 'two events with the same key ran at once');
    assert.ok(recorder.mostAtOnce() > 1, 'events of different keys ran at once');
  });

  test('an event sent `to` a subscription reaches only it, also when it is read again from the log after a crash', async (t) => {
    const log = await open(t);
    const first = log.bus<Events>();
    const stuck = gate();
    const shipping: number[] = [];
    const auditHandle = first.subscribe('audit', 'audit.*', async () => {
      await stuck.opened;
    });
    first.subscribe('shipping', 'order.*', (event) => {
      shipping.push(event.data.n);
    });
    await auditHandle.ready;
    const receipt = await first.publish('order.placed', { n: 1 }, { to: ['audit', 'audit'] });
    assert.deepEqual(receipt.recipients, ['audit']);
    await until(() => auditHandle.stats().inFlight === 1);
    // The audit handler never finishes: the crash leaves the event unhandled.
    await log.restart(20);

    const second = log.bus<Events>();
    const audit: { type: string; n: number }[] = [];
    const replayed: number[] = [];
    second.subscribe('audit', 'audit.*', (event) => {
      audit.push({ type: event.type, n: (event.data as { n: number }).n });
    });
    second.subscribe('replay', 'order.*', (event) => {
      replayed.push(event.data.n);
    }, { from: 'beginning' });
    await second.publish('order.placed', { n: 2 });
    await until(() => audit.length >= 1 && replayed.length >= 1);
    await second.idle();
    assert.deepEqual(audit, [{ type: 'order.placed', n: 1 }]);
    assert.deepEqual(replayed, [2]);
    assert.deepEqual(shipping, []);
    stuck.open();
  });

  test('a broadcast published while a subscription is away reaches it when it comes back, whatever its patterns', async (t) => {
    const log = await open(t);
    const first = log.bus<Events>();
    const handle = first.subscribe('audit', 'audit.*', () => {});
    await handle.ready;
    await handle.unsubscribe();
    const receipt = await first.publish('order.placed', { n: 1 }, { broadcast: true });
    assert.deepEqual(receipt.recipients, []);
    await first.publish('order.placed', { n: 2 });
    await log.restart();

    const second = log.bus<Events>();
    const audit: { type: string; n: number }[] = [];
    const replay: number[] = [];
    second.subscribe('audit', 'audit.*', (event) => {
      audit.push({ type: event.type, n: (event.data as { n: number }).n });
    });
    second.subscribe('replay', 'nothing.matches', (event) => {
      replay.push((event.data as { n: number }).n);
    }, { from: 'beginning' });
    await second.publish('audit.entry', { n: 3 });
    await until(() => audit.length >= 2 && replay.length >= 1);
    await second.idle();
    assert.deepEqual(audit, [
      { type: 'order.placed', n: 1 },
      { type: 'audit.entry', n: 3 },
    ]);
    assert.deepEqual(replay, [1]);
  });

  test('a subject filter applies to events read from the log', async (t) => {
    const log = await open(t);
    const bus = log.bus<Events>();
    for (const n of range(1, 7)) await bus.publish('order.placed', { n }, { subject: n % 2 === 0 ? 'eu' : 'us' });
    const eu: number[] = [];
    bus.subscribe('eu', 'order.*', (event) => {
      eu.push(event.data.n);
    }, { from: 'beginning', subject: 'eu' });
    await until(() => eu.length >= 3);
    await bus.idle();
    assert.deepEqual(eu, [2, 4, 6]);
    assert.equal((await bus.lag('eu')).events, 0);
  });
});
