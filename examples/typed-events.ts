// Typed events: an event map types publish and subscribe at compile time, a
// schema registered with registerTopic checks the data at run time, and a
// strict bus refuses topics nobody registered.
import assert from 'node:assert/strict';
import { z } from 'zod';
import { BusbarError, createBus, ValidationError } from '../src/index.ts';

// Topic → type of its data.
type Events = {
  'order.created': { id: string; total: number };
  'order.paid': { id: string; amount: number };
  'order.refunded': { id: string };
  'user.signed_up': { email: string };
};

const bus = createBus<Events>({ strict: true });

// Any Standard Schema works (zod, valibot, arktype…). Subscribers receive the
// schema's output, so a transform here normalizes the data once for everyone.
bus.registerTopic('order.created', {
  schema: z.object({ id: z.string().min(1), total: z.number().positive() }),
  description: 'A customer placed an order',
});
bus.registerTopic('order.paid', { schema: z.object({ id: z.string(), amount: z.number() }) });
bus.registerTopic('user.signed_up', {
  schema: z.object({ email: z.string().trim().toLowerCase().pipe(z.email()) }),
});
// 'order.refunded' is in the map but not registered: a strict bus refuses it.

// 'order.*' matches order.created, order.paid and order.refunded, so event is
// their union; checking event.type narrows event.data.
bus.subscribe('orders', 'order.*', (event) => {
  switch (event.type) {
    case 'order.created':
      return `created ${event.data.id} for ${event.data.total}`;
    case 'order.paid':
      return `paid ${event.data.id}: ${event.data.amount}`;
    default:
      return `refunded ${event.data.id}`;
  }
});
bus.subscribe('welcome', 'user.signed_up', (event) => `welcome ${event.data.email}`);

const created = await bus.publish('order.created', { id: 'o-1', total: 42 });
const signedUp = await bus.publish('user.signed_up', { email: '  Ada@Example.COM ' });
const [order] = await created.settled();
const [welcome] = await signedUp.settled();
console.log(order);
console.log(welcome);
assert.deepEqual(order, {
  subscription: 'orders',
  status: 'completed',
  value: 'created o-1 for 42',
  attempts: 1,
});
assert.equal(signedUp.event.data.email, 'ada@example.com'); // the schema's output
assert.deepEqual(welcome, {
  subscription: 'welcome',
  status: 'completed',
  value: 'welcome ada@example.com',
  attempts: 1,
});

// Data of the right type can still fail the schema: publish rejects with a
// ValidationError that lists every issue, and nothing is delivered.
try {
  await bus.publish('order.created', { id: '', total: -5 });
  assert.fail('publish should have rejected');
} catch (error) {
  assert.ok(error instanceof ValidationError);
  console.log(error.code, error.status, error.issues.map((issue) => issue.path.join('.')));
  assert.equal(error.code, 'BUSBAR_ERR_VALIDATION');
  assert.equal(error.status, 400);
  assert.deepEqual(
    error.issues.map((issue) => issue.path),
    [['id'], ['total']],
  );
}

// The compiler catches wrong data before the schema does.
// @ts-expect-error total must be a number
await assert.rejects(bus.publish('order.created', { id: 'o-2', total: '42' }), ValidationError);

// Strict mode: an unregistered topic is refused, even one in the event map.
await assert.rejects(bus.publish('order.refunded', { id: 'o-1' }), (error) => {
  assert.ok(error instanceof BusbarError);
  console.log(error.code, '-', error.message);
  assert.equal(error.code, 'BUSBAR_ERR_UNKNOWN_TOPIC');
  return true;
});

// topics() lists the registered topics, with how many valid events each got.
const published = Object.fromEntries(bus.topics().map((info) => [info.topic, info.published]));
console.log(published);
assert.equal(published['order.created'], 1);
assert.equal(published['order.paid'], 0);
assert.equal(published['user.signed_up'], 1);
assert.equal(published['order.refunded'], undefined); // not registered

await bus.close();
