// Which subscriptions an event reaches, and what a bus refuses to publish.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { type Bus, type BusbarEvent, createBus, type Pattern, ValidationError } from './index.ts';
import { sleep } from '../../test/support/async.ts';

function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

/** Resolves like `promise`, or rejects if it has not settled within `ms`. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`still pending after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Subscribes `name` to `patterns` and returns the topics it receives, in order. */
function record(
  bus: Bus,
  name: string,
  patterns: Pattern | readonly Pattern[],
  options?: Parameters<Bus['subscribe']>[3],
): string[] {
  const seen: string[] = [];
  bus.subscribe(
    name,
    patterns,
    (event: BusbarEvent) => {
      seen.push(event.type);
      return event.type;
    },
    options,
  );
  return seen;
}

async function publishAll(bus: Bus, topics: readonly string[]): Promise<void> {
  for (const topic of topics) await bus.publish(topic, null);
  await bus.idle();
}

const topics = [
  'orders',
  'orders.created',
  'orders.paid',
  'orders.eu.created',
  'orders.eu.de.created',
  'invoices.created',
];

describe('routing by pattern', () => {
  test('an exact pattern receives only its own topic', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const seen = record(bus, 'exact', 'orders.created');

    await publishAll(bus, topics);

    assert.deepEqual(seen, ['orders.created']);
  });

  test('a * token matches exactly one token', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const seen = record(bus, 'star', 'orders.*');
    const middle = record(bus, 'middle', 'orders.*.created');
    const lone = record(bus, 'lone', '*');

    await publishAll(bus, topics);

    assert.deepEqual(seen, ['orders.created', 'orders.paid']);
    assert.deepEqual(middle, ['orders.eu.created']);
    assert.deepEqual(lone, ['orders']);
  });

  test('a final > matches one or more tokens', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const seen = record(bus, 'tail', 'orders.>');
    const everything = record(bus, 'everything', '>');

    await publishAll(bus, topics);

    assert.deepEqual(seen, [
      'orders.created',
      'orders.paid',
      'orders.eu.created',
      'orders.eu.de.created',
    ]);
    assert.deepEqual(everything, topics);
  });

  test('a RegExp is tested against the whole topic', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const seen = record(bus, 'regexp', /^orders\.(created|paid)$/);
    const anywhere = record(bus, 'anywhere', /created/);
    // A global RegExp keeps lastIndex between tests; the bus must not let that skip topics.
    const global = record(bus, 'global', /^orders/g);

    await publishAll(bus, topics);

    assert.deepEqual(seen, ['orders.created', 'orders.paid']);
    assert.deepEqual(anywhere, [
      'orders.created',
      'orders.eu.created',
      'orders.eu.de.created',
      'invoices.created',
    ]);
    assert.deepEqual(global, topics.slice(0, 5));
  });

  test('a subscription with several patterns receives each matching event once', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const seen = record(bus, 'several', ['invoices.created', 'orders.*', 'orders.>', /paid$/]);

    await publishAll(bus, topics);

    assert.deepEqual(seen, [
      'orders.created',
      'orders.paid',
      'orders.eu.created',
      'orders.eu.de.created',
      'invoices.created',
    ]);
  });

  test('a subscription added after a topic was first published still receives it', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const early = record(bus, 'early', 'orders.*');
    await publishAll(bus, ['orders.created']);
    const late = record(bus, 'late', 'orders.created');

    const receipt = await bus.publish('orders.created', null);
    await bus.idle();

    assert.deepEqual(receipt.recipients, ['early', 'late']);
    assert.deepEqual(early, ['orders.created', 'orders.created']);
    assert.deepEqual(late, ['orders.created']);
  });

  test('an unsubscribed subscription receives nothing more', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const seen = record(bus, 'leaving', 'orders.*');
    await publishAll(bus, ['orders.created']);

    await bus.unsubscribe('leaving');
    const receipt = await bus.publish('orders.paid', null);

    assert.deepEqual(receipt.recipients, []);
    assert.deepEqual(await receipt.settled(), []);
    assert.deepEqual(seen, ['orders.created']);
    await assert.rejects(bus.unsubscribe('leaving'), {
      code: 'BUSBAR_ERR_UNKNOWN_SUBSCRIPTION',
    });
  });
});

describe('delivery modes', () => {
  test('to: [name] reaches only that subscription, even when its patterns do not match', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const a = record(bus, 'a', 'invoices.*');
    const b = record(bus, 'b', 'orders.*');

    const receipt = await bus.publish('orders.created', null, { to: ['a'] });

    assert.deepEqual(receipt.recipients, ['a']);
    assert.deepEqual(await receipt.settled(), [
      { subscription: 'a', status: 'completed', value: 'orders.created', attempts: 1 },
    ]);
    await bus.idle();
    assert.deepEqual(a, ['orders.created']);
    assert.deepEqual(b, []);
  });

  test('to: with an unknown name rejects and delivers to no one', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const a = record(bus, 'a', 'orders.*');

    await assert.rejects(bus.publish('orders.created', null, { to: ['a', 'ghost'] }), {
      code: 'BUSBAR_ERR_UNKNOWN_SUBSCRIPTION',
      message: /ghost/,
    });
    await assert.rejects(
      bus.publishEvent(
        { specversion: '1.0', id: 'e-1', source: 'test', type: 'orders.created' },
        { to: ['ghost'] },
      ),
      { code: 'BUSBAR_ERR_UNKNOWN_SUBSCRIPTION' },
    );
    await bus.idle();

    assert.deepEqual(a, []);
    assert.equal(bus.stats().total_published, 0);
  });

  test('to: naming a subscription twice delivers the event to it once', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const a = record(bus, 'a', 'orders.*');

    const receipt = await bus.publish('orders.created', null, { to: ['a', 'a'] });
    const results = await within(receipt.settled(), 200);
    await bus.idle();

    assert.deepEqual(receipt.recipients, ['a']);
    assert.deepEqual(results, [
      { subscription: 'a', status: 'completed', value: 'orders.created', attempts: 1 },
    ]);
    assert.deepEqual(a, ['orders.created']);
  });

  test('broadcast: true reaches every subscription whatever its patterns', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const a = record(bus, 'a', 'invoices.*');
    const b = record(bus, 'b', 'orders.*');
    const c = record(bus, 'c', /^never$/);

    const receipt = await bus.publish('system.shutdown', null, { broadcast: true });
    await receipt.settled();

    assert.deepEqual(receipt.recipients, ['a', 'b', 'c']);
    assert.deepEqual(a, ['system.shutdown']);
    assert.deepEqual(b, ['system.shutdown']);
    assert.deepEqual(c, ['system.shutdown']);
  });
});

describe('filtering within a subscription', () => {
  test('a subject filter given as a string receives only events with that subject', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const subjects: (string | undefined)[] = [];
    bus.subscribe('library-1', 'document.*', (event) => {
      subjects.push(event.subject);
    }, { subject: 'lib-1' });
    const all = record(bus, 'all', 'document.*');

    const one = await bus.publish('document.added', null, { subject: 'lib-1' });
    const two = await bus.publish('document.added', null, { subject: 'lib-2' });
    const none = await bus.publish('document.added', null);
    await bus.idle();

    assert.deepEqual(one.recipients, ['library-1', 'all']);
    assert.deepEqual(two.recipients, ['all']);
    assert.deepEqual(none.recipients, ['all']);
    assert.deepEqual(subjects, ['lib-1']);
    assert.equal(all.length, 3);
  });

  test('a subject filter given as an array receives events with any of those subjects', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const subjects: (string | undefined)[] = [];
    bus.subscribe('libraries', 'document.*', (event) => {
      subjects.push(event.subject);
    }, { subject: ['lib-1', 'lib-3'] });

    for (const subject of ['lib-1', 'lib-2', 'lib-3', 'lib-4'])
      await bus.publish('document.added', null, { subject });
    await bus.idle();

    assert.deepEqual(subjects, ['lib-1', 'lib-3']);
  });

  test('the filter option settles non-matching events as skipped without calling the handler', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const handled: number[] = [];
    const handle = bus.subscribe(
      'big-orders',
      'orders.created',
      (event) => {
        const total = (event.data as { total: number }).total;
        handled.push(total);
        return total;
      },
      { filter: (event) => (event.data as { total: number }).total >= 100 },
    );

    const small = await bus.publish('orders.created', { total: 5 });
    const big = await bus.publish('orders.created', { total: 500 });

    assert.deepEqual(await small.settled(), [
      { subscription: 'big-orders', status: 'skipped', attempts: 1 },
    ]);
    assert.deepEqual(await big.settled(), [
      { subscription: 'big-orders', status: 'completed', value: 500, attempts: 1 },
    ]);
    assert.deepEqual(handled, [500]);
    assert.equal(handle.stats().skipped, 1);
    assert.equal(handle.stats().completed, 1);
  });
});

describe('invalid input', () => {
  const badTopics: unknown[] = [
    '',
    'orders..created',
    '.orders',
    'orders.',
    'orders.cre ated',
    'orders.*',
    'orders.>',
    'orders/created',
    'x'.repeat(256),
    42,
  ];

  test('publishing to an invalid topic rejects with BUSBAR_ERR_INVALID_TOPIC and delivers nothing', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const seen = record(bus, 'everything', /.*/);

    for (const topic of badTopics) {
      await assert.rejects(
        bus.publish(topic as string, null),
        { code: 'BUSBAR_ERR_INVALID_TOPIC' },
        `topic ${String(topic).slice(0, 20)}`,
      );
    }
    await bus.idle();

    assert.deepEqual(seen, []);
    assert.equal(bus.stats().total_published, 0);
  });

  test('a topic of 255 characters is still valid', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const topic = 'x'.repeat(255);
    const seen = record(bus, 'long', topic);

    await publishAll(bus, [topic]);

    assert.deepEqual(seen, [topic]);
  });

  test('subscribing with an invalid pattern throws BUSBAR_ERR_INVALID_PATTERN', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const badPatterns: unknown[] = [
      '',
      'orders..created',
      'orders.>.created',
      'orders.cre ated',
      'orders.c*',
      'x'.repeat(256),
      42,
      [],
      ['orders.*', 'bad..one'],
    ];

    for (const [index, pattern] of badPatterns.entries()) {
      assert.throws(
        () => bus.subscribe(`bad-${index}`, pattern as Pattern, () => {}),
        { code: 'BUSBAR_ERR_INVALID_PATTERN' },
        `pattern ${JSON.stringify(pattern)?.slice(0, 20)}`,
      );
    }

    assert.equal(bus.stats().active_subscribers, 0);
    const receipt = await bus.publish('orders.created', null);
    assert.deepEqual(receipt.recipients, []);
  });

  test('a second subscription with the same name throws BUSBAR_ERR_DUPLICATE_SUBSCRIPTION', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const first = record(bus, 'indexer', 'orders.*');
    const second: string[] = [];

    assert.throws(
      () =>
        bus.subscribe('indexer', 'invoices.*', (event) => {
          second.push(event.type);
        }),
      { code: 'BUSBAR_ERR_DUPLICATE_SUBSCRIPTION', message: /indexer/ },
    );
    await publishAll(bus, ['orders.created', 'invoices.created']);

    assert.deepEqual(first, ['orders.created']);
    assert.deepEqual(second, []);
  });
});

describe('strict mode', () => {
  test('a strict bus publishes only registered topics', async (t) => {
    const bus = createBus({ strict: true });
    t.after(() => bus.close({ deadline: 50 }));
    const seen = record(bus, 'orders', 'orders.*');

    await assert.rejects(bus.publish('orders.created', null), {
      code: 'BUSBAR_ERR_UNKNOWN_TOPIC',
      message: /orders\.created/,
    });
    assert.deepEqual(bus.topics(), []);

    bus.registerTopic('orders.created', { description: 'an order was placed' });
    const receipt = await bus.publish('orders.created', { id: 'o-1' });
    await receipt.settled();

    assert.deepEqual(seen, ['orders.created']);
    assert.deepEqual(bus.topics(), [
      {
        topic: 'orders.created',
        schema: undefined,
        description: 'an order was placed',
        published: 1,
      },
    ]);

    assert.equal(bus.unregisterTopic('orders.created'), true);
    assert.equal(bus.unregisterTopic('orders.created'), false);
    await assert.rejects(bus.publish('orders.created', null), {
      code: 'BUSBAR_ERR_UNKNOWN_TOPIC',
    });
    await bus.idle();
    assert.deepEqual(seen, ['orders.created']);
    assert.deepEqual(bus.topics(), []);
  });

  test('a strict bus refuses publishEvent for an unregistered type', async (t) => {
    const bus = createBus({ strict: true });
    t.after(() => bus.close({ deadline: 50 }));
    const seen = record(bus, 'orders', 'orders.*');

    await assert.rejects(
      bus.publishEvent({ specversion: '1.0', id: 'e-1', source: 'test', type: 'orders.created' }),
      { code: 'BUSBAR_ERR_UNKNOWN_TOPIC' },
    );
    bus.registerTopic('orders.created');
    await bus.publishEvent({ specversion: '1.0', id: 'e-2', source: 'test', type: 'orders.created' });
    await bus.idle();

    assert.deepEqual(seen, ['orders.created']);
  });

  test('topics() lists every registered topic with its publish count', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    bus.registerTopic('orders.created');
    bus.registerTopic('orders.paid', { description: 'paid' });
    await bus.publish('orders.paid', null);
    await bus.publish('orders.paid', null);
    await bus.publish('unregistered.topic', null);

    const listed = bus
      .topics()
      .map(({ topic, published, description }) => ({ topic, published, description }))
      .sort((a, b) => a.topic.localeCompare(b.topic));

    assert.deepEqual(listed, [
      { topic: 'orders.created', published: 0, description: undefined },
      { topic: 'orders.paid', published: 2, description: 'paid' },
    ]);
  });

  test('registering an invalid topic or a schema that is not a Standard Schema throws', (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));

    assert.throws(() => bus.registerTopic('orders..created'), {
      code: 'BUSBAR_ERR_INVALID_TOPIC',
    });
    assert.throws(
      () => bus.registerTopic('orders.created', { schema: { parse() {} } as never }),
      { code: 'BUSBAR_ERR_INVALID_ARGUMENT' },
    );
    assert.deepEqual(bus.topics(), []);
  });
});

describe('schema validation', () => {
  const order = z.object({
    id: z.string().min(1),
    total: z.number().positive(),
    currency: z.string().default('EUR'),
    note: z.string().trim().optional(),
  });

  test('data that fails the topic schema rejects with a ValidationError listing every issue', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    bus.registerTopic('orders.created', { schema: order });
    const seen = record(bus, 'orders', 'orders.*');

    const error = await bus.publish('orders.created', { id: '', total: -5 }).then(
      () => assert.fail('publish should have rejected'),
      (thrown: unknown) => thrown,
    );

    assert.ok(error instanceof ValidationError);
    assert.equal(error.code, 'BUSBAR_ERR_VALIDATION');
    assert.equal(error.status, 400);
    assert.deepEqual(
      error.issues.map((issue) => issue.path),
      [['id'], ['total']],
    );
    assert.ok(error.issues.every((issue) => issue.message.length > 0));
    assert.match(error.message, /id: .*; total: /);
    await bus.idle();
    assert.deepEqual(seen, []);
    assert.equal(bus.stats().total_published, 0);
  });

  test("data that passes the topic schema is delivered as the schema's output", async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    bus.registerTopic('orders.created', { schema: order });
    const received: unknown[] = [];
    bus.subscribe('orders', 'orders.*', (event) => {
      received.push(event.data);
    });

    const receipt = await bus.publish('orders.created', {
      id: 'o-1',
      total: 42,
      note: '  gift  ',
      extra: 'stripped by zod',
    });
    await receipt.settled();

    const output = { id: 'o-1', total: 42, currency: 'EUR', note: 'gift' };
    assert.deepEqual(receipt.event.data, output);
    assert.deepEqual(received, [output]);
  });

  test('an asynchronous schema is awaited before the event is delivered', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const schema = z.string().refine(async (value) => {
      await sleep(1);
      return value.startsWith('ok');
    }, 'must start with ok');
    bus.registerTopic('notes.added', { schema });
    const seen = record(bus, 'notes', 'notes.*');

    await assert.rejects(bus.publish('notes.added', 'bad'), (error: unknown) => {
      assert.ok(error instanceof ValidationError);
      assert.deepEqual(
        error.issues.map((issue) => issue.message),
        ['must start with ok'],
      );
      return true;
    });
    const receipt = await bus.publish('notes.added', 'ok then');
    await receipt.settled();

    assert.deepEqual(seen, ['notes.added']);
  });

  test('publishEvent validates data against the topic schema and delivers its output', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    bus.registerTopic('orders.created', { schema: order });
    const received: unknown[] = [];
    bus.subscribe('orders', 'orders.*', (event) => {
      received.push(event.data);
    });
    const base = { specversion: '1.0', source: 'test', type: 'orders.created' };

    await assert.rejects(bus.publishEvent({ ...base, id: 'e-1', data: { id: 'o-1' } }), {
      name: 'ValidationError',
      code: 'BUSBAR_ERR_VALIDATION',
    });
    const receipt = await bus.publishEvent({ ...base, id: 'e-2', data: { id: 'o-2', total: 7 } });
    await receipt.settled();

    const output = { id: 'o-2', total: 7, currency: 'EUR' };
    assert.deepEqual(received, [output]);
    assert.deepEqual(receipt.event.data, output);
  });
});

describe('publishEvent', () => {
  test('a CloudEvents object is delivered with its own attributes', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const received: BusbarEvent[] = [];
    bus.subscribe('orders', 'orders.*', (event) => {
      received.push(event);
    });

    const receipt = await bus.publishEvent({
      specversion: '1.0',
      id: 'evt-42',
      source: 'https://shop.example/orders',
      type: 'orders.created',
      subject: 'o-1',
      time: '2024-05-01T10:00:00Z',
      datacontenttype: 'application/json',
      data: { id: 'o-1' },
      partitionkey: 'customer-7',
      tenant: 'acme',
    });
    await receipt.settled();

    assert.equal(receipt.id, 'evt-42');
    assert.deepEqual(receipt.recipients, ['orders']);
    assert.equal(received.length, 1);
    const event = received[0]!;
    assert.equal(event, receipt.event);
    assert.equal(event.id, 'evt-42');
    assert.equal(event.source, 'https://shop.example/orders');
    assert.equal(event.type, 'orders.created');
    assert.equal(event.subject, 'o-1');
    assert.equal(event.time, '2024-05-01T10:00:00Z');
    assert.equal(event.partitionkey, 'customer-7');
    assert.equal(event.tenant, 'acme');
    assert.deepEqual(event.data, { id: 'o-1' });
    assert.ok(Object.isFrozen(event));
  });

  test('a CloudEvents object without a time is stamped with the publish time', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const before = Date.now();

    const receipt = await bus.publishEvent({
      specversion: '1.0',
      id: 'evt-1',
      source: 'test',
      type: 'orders.created',
    });

    const time = Date.parse(receipt.event.time);
    assert.ok(time >= before && time <= Date.now(), `time ${receipt.event.time}`);
    assert.equal(receipt.event.data, undefined);
  });

  test('a malformed CloudEvents object rejects with BUSBAR_ERR_INVALID_EVENT', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const seen = record(bus, 'everything', />?/);
    const valid = { specversion: '1.0', id: 'e-1', source: 'test', type: 'orders.created' };
    const malformed: unknown[] = [
      null,
      'orders.created',
      [valid],
      { ...valid, specversion: undefined },
      { ...valid, specversion: '0.3' },
      { ...valid, id: undefined },
      { ...valid, id: '' },
      { ...valid, source: undefined },
      { ...valid, type: undefined },
      { ...valid, time: 'yesterday' },
      { ...valid, subject: 7 },
      { ...valid, data: 1, data_base64: 'AQ==' },
      { ...valid, 'Bad-Name': 'x' },
      { ...valid, nested: { not: 'allowed' } },
      { ...valid, priority: 1.5 },
    ];

    for (const [index, input] of malformed.entries()) {
      await assert.rejects(
        bus.publishEvent(input),
        { code: 'BUSBAR_ERR_INVALID_EVENT' },
        `malformed event #${index}`,
      );
    }
    await assert.rejects(bus.publishEvent({ ...valid, type: 'orders..created' }), {
      code: 'BUSBAR_ERR_INVALID_TOPIC',
    });
    await bus.idle();

    assert.deepEqual(seen, []);
    assert.equal(bus.stats().total_published, 0);
  });
});

describe('setup and teardown', () => {
  test("setup runs once before the first event and its result reaches the handler as context.context", async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const steps: string[] = [];
    const gate = deferred();
    let setupCalls = 0;
    const handle = bus.subscribe(
      'indexer',
      'document.*',
      (event, context) => {
        steps.push(`handle ${String(event.data)} with ${context.context.client}`);
      },
      {
        context: { client: 'initial' },
        setup: async (initial) => {
          setupCalls++;
          steps.push(`setup from ${initial.client}`);
          await gate.promise;
          return { client: 'connected' };
        },
      },
    );

    const receipts = [
      await bus.publish('document.added', 1),
      await bus.publish('document.added', 2),
    ];
    await sleep(10);
    assert.deepEqual(steps, ['setup from initial'], 'no event is handled before setup ends');

    gate.resolve();
    await handle.ready;
    await Promise.all(receipts.map((receipt) => receipt.settled()));
    await bus.publish('document.added', 3);
    await bus.idle();

    assert.equal(setupCalls, 1);
    assert.deepEqual(steps, [
      'setup from initial',
      'handle 1 with connected',
      'handle 2 with connected',
      'handle 3 with connected',
    ]);
  });

  test('the context option reaches the handler when there is no setup', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const db = { name: 'db' };
    bus.subscribe('writer', 'document.*', (_event, context) => context.context, { context: db });

    const receipt = await bus.publish('document.added', null);

    const [result] = await receipt.settled();
    assert.ok(result?.status === 'completed');
    assert.equal(result.value, db);
  });

  test('teardown runs once, with the context, after the queue drains on unsubscribe', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const steps: string[] = [];
    const handle = bus.subscribe(
      'indexer',
      'document.*',
      async (event) => {
        await sleep(2);
        steps.push(`handle ${String(event.data)}`);
      },
      {
        setup: () => ({ client: 'connected' }),
        teardown: (context) => {
          steps.push(`teardown ${context.client}`);
        },
      },
    );
    await handle.ready;
    await bus.publish('document.added', 1);
    await bus.publish('document.added', 2);

    await handle.unsubscribe();
    await handle.unsubscribe();
    await bus.close({ deadline: 50 });

    assert.deepEqual(steps, ['handle 1', 'handle 2', 'teardown connected']);
  });

  test('unsubscribing while setup is still running tears down what setup returned, after it', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const steps: string[] = [];
    const handle = bus.subscribe('indexer', 'document.*', () => {}, {
      context: 'initial',
      setup: async () => {
        steps.push('setup started');
        await sleep(15);
        steps.push('setup ended');
        return 'connection';
      },
      teardown: (context) => {
        steps.push(`teardown ${context}`);
      },
    });

    await handle.unsubscribe();
    await sleep(25);

    assert.deepEqual(steps, ['setup started', 'setup ended', 'teardown connection']);
  });

  test('closing the bus while setup is still running tears down what setup returned, after it', async () => {
    const bus = createBus();
    const steps: string[] = [];
    bus.subscribe('indexer', 'document.*', () => {}, {
      context: 'initial',
      setup: async () => {
        steps.push('setup started');
        await sleep(15);
        steps.push('setup ended');
        return 'connection';
      },
      teardown: (context) => {
        steps.push(`teardown ${context}`);
      },
    });

    await bus.close({ deadline: 100 });
    await sleep(25);

    assert.deepEqual(steps, ['setup started', 'setup ended', 'teardown connection']);
  });

  test('teardown runs once when the bus closes', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    let teardowns = 0;
    bus.subscribe('indexer', 'document.*', () => {}, {
      teardown: () => {
        teardowns++;
      },
    });

    await bus.close({ deadline: 50 });
    await bus.close({ deadline: 50 });

    assert.equal(teardowns, 1);
  });

  test('a failing setup rejects ready, is reported, and shows in health as setup-failed', async (t) => {
    const reported: { message: string; origin: string }[] = [];
    const bus = createBus({
      onError: (error, origin) => reported.push({ message: error.message, origin }),
    });
    t.after(() => bus.close({ deadline: 50 }));
    let handled = 0;
    const handle = bus.subscribe(
      'indexer',
      'document.*',
      () => {
        handled++;
      },
      {
        setup: async () => {
          throw new Error('cannot connect');
        },
        retry: { attempts: 3, initialDelay: 1, maxDelay: 5 },
      },
    );
    bus.subscribe('healthy', 'other.*', () => {});

    await assert.rejects(handle.ready, { message: 'cannot connect' });
    assert.deepEqual(reported, [
      { message: 'cannot connect', origin: 'setup of subscription "indexer"' },
    ]);
    assert.deepEqual(bus.health(), {
      status: 'degraded',
      problems: [{ subscription: 'indexer', code: 'setup-failed', message: 'cannot connect' }],
    });

    // Events for it fail with the setup error at once, without retries.
    const receipt = await bus.publish('document.added', null);
    const [result] = await receipt.settled();
    assert.ok(result?.status === 'failed');
    assert.equal(result.error.message, 'cannot connect');
    assert.equal(result.attempts, 1);
    assert.equal(handled, 0);
  });
});

describe('notify', () => {
  test("notify publishes the work's result with initializedat no later than time", async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const received: BusbarEvent[] = [];
    bus.subscribe('reports', 'report.>', (event) => {
      received.push(event);
    });

    const receipt = await bus.notify(
      'report.built',
      async () => {
        await sleep(15);
        return { pages: 3 };
      },
      { subject: 'monthly' },
    );
    await receipt.settled();

    assert.equal(received.length, 1);
    const event = received[0]!;
    assert.equal(event.type, 'report.built');
    assert.equal(event.subject, 'monthly');
    assert.deepEqual(event.data, { pages: 3 });
    assert.equal(typeof event.initializedat, 'string');
    const started = Date.parse(event.initializedat as string);
    const ended = Date.parse(event.time);
    assert.ok(started <= ended, `initializedat ${event.initializedat} ≤ time ${event.time}`);
    assert.ok(ended - started >= 10, 'the two stamps span the work');
  });

  test('notify publishes a throwing work to <topic>.failed with the error message', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const seen = record(bus, 'reports', 'report.>');
    const failures: BusbarEvent[] = [];
    bus.subscribe('failures', 'report.built.failed', (event) => {
      failures.push(event);
    });

    const receipt = await bus.notify('report.built', () => {
      throw new Error('disk full');
    });
    await receipt.settled();
    await bus.idle();

    assert.equal(receipt.event.type, 'report.built.failed');
    assert.deepEqual(seen, ['report.built.failed']);
    assert.equal(failures.length, 1);
    assert.deepEqual(failures[0]!.data, { name: 'Error', message: 'disk full' });
    assert.ok(
      Date.parse(failures[0]!.initializedat as string) <= Date.parse(failures[0]!.time),
    );
  });

  test('notify publishes a failure to errorTopic when one is given', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const seen = record(bus, 'everything', '>');

    const receipt = await bus.notify(
      'report.built',
      async () => {
        throw Object.assign(new Error('quota exceeded'), { code: 'E_QUOTA' });
      },
      { errorTopic: 'report.errors' },
    );
    await receipt.settled();

    assert.deepEqual(seen, ['report.errors']);
    assert.deepEqual(receipt.event.data, {
      name: 'Error',
      message: 'quota exceeded',
      code: 'E_QUOTA',
    });
  });
});

describe('time to live', () => {
  test('an event whose ttl passes while its subscriber is busy settles expired and is never handled', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const handled: string[] = [];
    const handle = bus.subscribe('busy', 'job.*', async (event) => {
      handled.push(event.type);
      if (event.type === 'job.slow') await sleep(20);
      return event.type;
    });

    const slow = await bus.publish('job.slow', null);
    const fresh = await bus.publish('job.fresh', null, { ttl: 1 });
    const keep = await bus.publish('job.keep', null, { ttl: 10_000 });

    assert.ok(typeof fresh.event.expirytime === 'string');
    assert.deepEqual(await fresh.settled(), [{ subscription: 'busy', status: 'expired' }]);
    assert.equal((await slow.settled())[0]?.status, 'completed');
    assert.equal((await keep.settled())[0]?.status, 'completed');
    assert.deepEqual(handled, ['job.slow', 'job.keep']);
    assert.equal(handle.stats().expired, 1);
    assert.equal(bus.stats().total_expired, 1);
  });

  test('an event published with an expirytime in the past is never handled', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const seen = record(bus, 'jobs', 'job.*');

    const stale = await bus.publish('job.run', null, { expirytime: new Date(Date.now() - 1000) });

    assert.deepEqual(await stale.settled(), [{ subscription: 'jobs', status: 'expired' }]);
    assert.deepEqual(seen, []);
    assert.equal(bus.stats().total_expired, 1);
  });

  test('expired events stay counted after their subscription is gone', async (t) => {
    const bus = createBus();
    t.after(() => bus.close({ deadline: 50 }));
    const handle = bus.subscribe('busy', 'job.*', async (event) => {
      if (event.type === 'job.slow') await sleep(10);
    });
    await bus.publish('job.slow', null);
    const fresh = await bus.publish('job.fresh', null, { ttl: 1 });
    await fresh.settled();

    await handle.unsubscribe();

    assert.equal(bus.stats().total_expired, 1);
  });
});

describe('publishEvents on a memory bus', () => {
  const event = (id: string, type = 'order.placed'): Record<string, unknown> => ({ specversion: '1.0', id, type, source: 'test', data: { id } });

  test('delivers the batch in order, each event to the subscriptions it matches', async () => {
    const bus = createBus();
    const seen: string[] = [];
    bus.subscribe('orders', 'order.*', (received) => {
      seen.push(received.id);
    });
    const receipts = await bus.publishEvents([event('a'), event('b', 'invoice.sent'), event('c')]);
    assert.deepEqual(receipts.map((receipt) => receipt.id), ['a', 'b', 'c']);
    await bus.idle();
    assert.deepEqual(seen, ['a', 'c']);
  });

  test('publishes nothing when one event fails its schema', async () => {
    const bus = createBus();
    bus.registerTopic('order.placed', { schema: z.object({ id: z.string().startsWith('ok') }) });
    const seen: string[] = [];
    bus.subscribe('orders', 'order.*', (received) => {
      seen.push(received.id);
    });
    await assert.rejects(bus.publishEvents([event('ok-1'), event('bad')]), ValidationError);
    await bus.idle();
    assert.deepEqual(seen, []);
    assert.equal(bus.stats().total_published, 0);
  });

  test('refuses something that is not an array', async () => {
    const bus = createBus();
    await assert.rejects(bus.publishEvents(event('a') as unknown as unknown[]), { code: 'BUSBAR_ERR_INVALID_ARGUMENT' });
  });
});
