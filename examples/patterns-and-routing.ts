// Patterns and routing: which subscriptions an event reaches, by topic
// pattern, by subject, by name (`to`) or all of them (`broadcast`).
import assert from 'node:assert/strict';
import { BusbarError, createBus, skip } from '../src/index.ts';

const bus = createBus();
const handled: string[] = [];
const record = (name: string) => (event: { type: string }) => {
  handled.push(`${name} <- ${event.type}`);
  return name;
};

bus.subscribe('exact', 'order.created', record('exact')); // this topic only
bus.subscribe('one-token', 'order.*', record('one-token')); // order.<one token>
bus.subscribe('one-or-more', 'order.>', record('one-or-more')); // order.<one or more tokens>
bus.subscribe('regexp', /^(order|invoice)\.created$/, record('regexp')); // anchor it yourself
bus.subscribe('documents', 'doc.added', record('documents'));
// Only doc.added events whose CloudEvents subject is library-7.
bus.subscribe('library-7', 'doc.added', record('library-7'), { subject: 'library-7' });
// filter: the handler never sees the others; they settle as skipped.
bus.subscribe('big-invoices', 'invoice.created', record('big-invoices'), {
  filter: (event) => (event.data as { total: number }).total >= 1000,
});

async function reached(receipt: Promise<{ recipients: readonly string[] }>): Promise<string[]> {
  return [...(await receipt).recipients].sort();
}

assert.deepEqual(await reached(bus.publish('order.created', { id: 'o-1' })), [
  'exact',
  'one-or-more',
  'one-token',
  'regexp',
]);
assert.deepEqual(await reached(bus.publish('order.eu.shipped', { id: 'o-1' })), ['one-or-more']);
assert.deepEqual(await reached(bus.publish('order', { id: 'o-1' })), []); // '>' needs at least one token
assert.deepEqual(await reached(bus.publish('invoice.created', { total: 5 })), [
  'big-invoices',
  'regexp',
]);

// Subject filters: a subscription with one never receives events without a subject.
assert.deepEqual(await reached(bus.publish('doc.added', { n: 1 }, { subject: 'library-7' })), [
  'documents',
  'library-7',
]);
assert.deepEqual(await reached(bus.publish('doc.added', { n: 2 }, { subject: 'library-8' })), [
  'documents',
]);
assert.deepEqual(await reached(bus.publish('doc.added', { n: 3 })), ['documents']);

// to: only the named subscriptions, whatever their patterns.
assert.deepEqual(await reached(bus.publish('order.created', { id: 'o-2' }, { to: ['documents'] })), [
  'documents',
]);
// broadcast: every subscription, whatever its patterns.
const everyone = await bus.publish('system.maintenance', { in: '5m' }, { broadcast: true });
assert.equal(everyone.recipients.length, 7);

// The filter settled the small invoice as skipped without calling the handler.
const small = await bus.publish('invoice.created', { total: 10 }, { to: ['big-invoices'] });
assert.deepEqual(await small.settled(), [
  { subscription: 'big-invoices', status: 'skipped', attempts: 1 },
]);
// A handler can skip too, by returning `skip`.
bus.subscribe('only-eu', 'order.>', (event) => (event.type.includes('.eu.') ? 'eu' : skip));
const notEu = await bus.publish('order.us.shipped', {}, { to: ['only-eu'] });
assert.equal((await notEu.settled())[0]!.status, 'skipped');

// Bad patterns and unknown names fail loudly.
assert.throws(() => bus.subscribe('bad', 'order.>.created', record('bad')), {
  code: 'BUSBAR_ERR_INVALID_PATTERN',
});
assert.throws(() => bus.subscribe('exact', 'order.paid', record('exact')), {
  code: 'BUSBAR_ERR_DUPLICATE_SUBSCRIPTION',
});
await assert.rejects(bus.publish('order.created', {}, { to: ['nobody'] }), (error) => {
  assert.ok(error instanceof BusbarError);
  assert.equal(error.code, 'BUSBAR_ERR_UNKNOWN_SUBSCRIPTION');
  return true;
});
await assert.rejects(bus.publish('order..created', {}), { code: 'BUSBAR_ERR_INVALID_TOPIC' });

await bus.idle();
console.log(handled.join('\n'));
assert.ok(handled.includes('regexp <- invoice.created'));
assert.ok(!handled.includes('big-invoices <- invoice.created')); // filtered out

await bus.close();
