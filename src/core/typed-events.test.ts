// Most of this file is checked by the compiler, not at run time: every
// `@ts-expect-error` must meet an error, so `tsc` fails if the typing of
// publish or subscribe ever becomes looser. The tests also run, so each call
// is made against a strict bus with schemas and its runtime outcome asserted.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { createBus } from './bus.ts';
import { BusbarError, ValidationError } from './errors.ts';
import type { BusbarEvent } from './event.ts';
import type { EventOf, EventsMatching, TopicsMatching } from './typed-events.ts';

type Events = {
  'order.created': { id: string; total: number };
  'order.paid': { id: string; amount: number };
  'order.eu.shipped': { id: string; carrier: string };
  'user.signed_up': { email: string };
};

// True only when A and B are the same type (not merely assignable).
type Equal<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

function strictBus() {
  const bus = createBus<Events>({ strict: true, stats: false });
  bus.registerTopic('order.created', {
    schema: z.object({ id: z.string(), total: z.number() }),
  });
  bus.registerTopic('order.paid', { schema: z.object({ id: z.string(), amount: z.number() }) });
  bus.registerTopic('order.eu.shipped', {
    schema: z.object({ id: z.string(), carrier: z.string() }),
  });
  bus.registerTopic('user.signed_up', { schema: z.object({ email: z.string() }) });
  return bus;
}

describe('TopicsMatching', () => {
  test('resolves literal and wildcard patterns to the topics they match', () => {
    const created: Equal<TopicsMatching<Events, 'order.created'>, 'order.created'> = true;
    const oneToken: Equal<TopicsMatching<Events, 'order.*'>, 'order.created' | 'order.paid'> = true;
    const oneOrMore: Equal<
      TopicsMatching<Events, 'order.>'>,
      'order.created' | 'order.paid' | 'order.eu.shipped'
    > = true;
    const middle: Equal<TopicsMatching<Events, 'order.*.shipped'>, 'order.eu.shipped'> = true;
    const everything: Equal<TopicsMatching<Events, '>'>, keyof Events> = true;
    const firstToken: Equal<TopicsMatching<Events, '*.signed_up'>, 'user.signed_up'> = true;
    const none: Equal<TopicsMatching<Events, 'invoice.*'>, never> = true;
    const notAPrefix: Equal<TopicsMatching<Events, 'order'>, never> = true;
    assert.deepEqual(
      [created, oneToken, oneOrMore, middle, everything, firstToken, none, notAPrefix],
      [true, true, true, true, true, true, true, true],
    );
  });

  test('types the events of a pattern as the union of the matching topics', () => {
    const union: Equal<
      EventsMatching<Events, 'order.*'>,
      | BusbarEvent<Events['order.created'], 'order.created'>
      | BusbarEvent<Events['order.paid'], 'order.paid'>
    > = true;
    const list: Equal<
      EventsMatching<Events, readonly ['order.created', 'user.signed_up']>,
      EventOf<Events, 'order.created'> | EventOf<Events, 'user.signed_up'>
    > = true;
    const regexp: Equal<
      EventsMatching<Events, RegExp>,
      EventOf<Events, keyof Events & string>
    > = true;
    const unmatched: Equal<
      EventsMatching<Events, 'invoice.*'>,
      BusbarEvent<unknown, string>
    > = true;
    assert.deepEqual([union, list, regexp, unmatched], [true, true, true, true]);
  });
});

describe('createBus<Events>().publish', () => {
  test('accepts the data type of the topic', async () => {
    const bus = strictBus();
    const receipt = await bus.publish('order.created', { id: 'o-1', total: 42 });
    const typed: Equal<typeof receipt.event.data, { id: string; total: number }> = true;
    const topic: 'order.created' = receipt.event.type;
    assert.equal(typed, true);
    assert.equal(topic, 'order.created');
    assert.deepEqual(receipt.event.data, { id: 'o-1', total: 42 });
    await bus.close();
  });

  test('rejects data of the wrong type at compile time', async () => {
    const bus = strictBus();
    // @ts-expect-error total must be a number
    const wrongField = bus.publish('order.created', { id: 'o-1', total: '42' });
    // @ts-expect-error total is missing
    const missingField = bus.publish('order.created', { id: 'o-1' });
    // @ts-expect-error the data of order.paid is not that of order.created
    const otherTopicsData = bus.publish('order.created', { id: 'o-1', amount: 42 });
    // @ts-expect-error data is required
    const noData = bus.publish('order.created');
    for (const publishing of [wrongField, missingField, otherTopicsData, noData]) {
      await assert.rejects(publishing, ValidationError);
    }
    await bus.close();
  });

  test('rejects unknown topics at compile time', async () => {
    const bus = strictBus();
    // @ts-expect-error not a topic of Events
    const unknown = bus.publish('order.deleted', { id: 'o-1' });
    // @ts-expect-error a pattern is not a topic
    const pattern = bus.publish('order.*', { id: 'o-1', total: 1 });
    await assert.rejects(unknown, { code: 'BUSBAR_ERR_UNKNOWN_TOPIC' });
    await assert.rejects(pattern, BusbarError);
    await bus.close();
  });
});

describe('createBus<Events>().subscribe', () => {
  test('types event.data as the union of the data of the topics a wildcard matches', async () => {
    const bus = strictBus();
    bus.subscribe('orders', 'order.*', (event) => {
      const check: { id: string } = event.data;
      const union: Equal<
        typeof event.data,
        { id: string; total: number } | { id: string; amount: number }
      > = true;
      // @ts-expect-error total is only on order.created, so not on the union
      const total: number = event.data.total;
      // @ts-expect-error user.signed_up does not match order.*
      if (event.type === 'user.signed_up') return 'impossible';
      if (event.type === 'order.paid') {
        const amount: number = event.data.amount;
        return `${check.id} paid ${amount}`;
      }
      return `${check.id} created ${event.data.total} ${union} ${total}`;
    });
    const created = await bus.publish('order.created', { id: 'o-1', total: 42 });
    const paid = await bus.publish('order.paid', { id: 'o-1', amount: 42 });
    const signedUp = await bus.publish('user.signed_up', { email: 'a@example.com' });
    assert.deepEqual(await created.settled(), [
      { subscription: 'orders', status: 'completed', value: 'o-1 created 42 true 42', attempts: 1 },
    ]);
    assert.deepEqual(await paid.settled(), [
      { subscription: 'orders', status: 'completed', value: 'o-1 paid 42', attempts: 1 },
    ]);
    assert.deepEqual(signedUp.recipients, []);
    await bus.close();
  });

  test('types event.data from a list of patterns', async () => {
    const bus = strictBus();
    bus.subscribe('audit', ['order.eu.shipped', 'user.*'], (event) => {
      const data: { id: string; carrier: string } | { email: string } = event.data;
      return 'email' in data ? data.email : data.carrier;
    });
    const receipt = await bus.publish('user.signed_up', { email: 'a@example.com' });
    assert.deepEqual(await receipt.settled(), [
      { subscription: 'audit', status: 'completed', value: 'a@example.com', attempts: 1 },
    ]);
    await bus.close();
  });
});
