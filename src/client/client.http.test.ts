import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { BusbarError, ConcurrencyError, createClient } from './index.ts';
import { type LiveServer, startLiveServer } from './live-server.fixture.ts';

describe('the client over HTTP', () => {
  let live: LiveServer;
  before(async () => {
    live = await startLiveServer();
  });
  after(() => live.close());

  it('publishes an event and answers with the id and position the log gave it', async () => {
    const client = createClient({ url: live.url });
    const accepted = await client.publish('order.created', { id: 'o-1', total: 250 }, { subject: 'o-1', key: 'o-1', id: 'evt-http-1' });
    assert.equal(accepted.id, 'evt-http-1');
    const stored = await client.getEvent('evt-http-1');
    assert.equal(stored?.sequence, accepted.position);
    assert.deepEqual([stored?.type, stored?.subject, stored?.partitionkey, stored?.data], ['order.created', 'o-1', 'o-1', { id: 'o-1', total: 250 }]);
  });

  it('makes a time-ordered id on the client when the publisher gives none', async () => {
    const client = createClient({ url: live.url });
    const first = await client.publish('order.created', { id: 'o-2' });
    const second = await client.publish({ type: 'order.paid', data: { id: 'o-2' } });
    assert.match(first.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.ok(first.id < second.id, 'ids sort in publish order');
    assert.equal(second.position, first.position + 1);
  });

  it('publishes a batch at consecutive positions, and bytes round-trip as data_base64', async () => {
    const client = createClient({ url: live.url });
    const accepted = await client.publishBatch([
      { type: 'file.stored', data: new Uint8Array([0, 1, 254, 255]) },
      { type: 'file.indexed', data: { pages: 3 }, subject: 'f-1' },
    ]);
    assert.equal(accepted.length, 2);
    assert.equal(accepted[1]!.position, accepted[0]!.position + 1);
    const bytes = await client.getEvent(accepted[0]!.id);
    assert.equal(bytes?.data_base64, 'AAH+/w==');
  });

  it('reads pages after a position with topic and subject filters, and readAll walks every page to the end', async () => {
    const client = createClient({ url: live.url });
    const batch = await client.publishBatch(Array.from({ length: 25 }, (_, index) => ({ type: index % 2 === 0 ? 'walk.even' : 'walk.odd', data: index, subject: `s-${index % 3}` })));
    const start = batch[0]!.position - 1;
    const page = await client.read({ after: start, limit: 4, topics: 'walk.even' });
    assert.deepEqual(page.events.map((event) => event.data), [0, 2, 4, 6]);
    assert.equal(page.last, page.events[3]!.sequence);
    const next = await client.read({ after: page.last, limit: 2, topics: 'walk.even', subject: 's-2' });
    assert.deepEqual(next.events.map((event) => [event.data, event.subject]), [[8, 's-2']], 'the subject filter leaves one of the two');
    const all: unknown[] = [];
    for await (const event of client.readAll({ after: start, topics: ['walk.odd', 'walk.even'], pageSize: 7 })) all.push(event.data);
    assert.deepEqual(all, Array.from({ length: 25 }, (_, index) => index));
    const bounded: number[] = [];
    for await (const event of client.readAll({ after: start, to: start + 12, subject: 's-0', pageSize: 5 })) bounded.push(event.sequence);
    assert.deepEqual(bounded, [0, 3, 6, 9, 12].map((index) => start + 1 + index).filter((position) => position <= start + 12));
  });

  it('answers undefined for an event id the log does not have', async () => {
    assert.equal(await createClient({ url: live.url }).getEvent('no-such-event'), undefined);
  });

  it('appends to a stream with an expected version and turns a 409 into a ConcurrencyError', async () => {
    const client = createClient({ url: live.url });
    const opened = await client.appendToStream('account-1', [{ type: 'account.opened', data: { owner: 'Ada' } }], { expectedVersion: 'no_stream' });
    assert.equal(opened.version, 1);
    const conflict = await client.appendToStream('account-1', [{ type: 'account.deposited', data: { amount: 5 } }], { expectedVersion: 0 }).catch((error: unknown) => error);
    assert.ok(conflict instanceof ConcurrencyError, `expected a ConcurrencyError, got ${String(conflict)}`);
    assert.deepEqual([conflict.code, conflict.status, conflict.stream, conflict.expected, conflict.actual], ['BUSBAR_ERR_CONCURRENCY', 409, 'account-1', 0, 1]);
    const stream = await client.readStream('account-1');
    assert.equal(stream.version, 1);
    assert.deepEqual(stream.events.map((event) => event.type), ['account.opened']);
  });

  it('registers topics with a schema, and a refused publish comes back with the server code, status, message and details', async () => {
    const client = createClient({ url: live.url });
    const registered = await client.registerTopic('invoice.sent', { schema: { type: 'object', required: ['id'] }, description: 'an invoice' });
    assert.equal(registered.validated, true);
    assert.deepEqual((await client.listTopics()).map((topic) => topic.topic), ['invoice.sent']);
    const refused = await client.publish('invoice.sent', { total: 1 }).catch((error: unknown) => error);
    assert.ok(refused instanceof BusbarError);
    assert.equal(refused.code, 'BUSBAR_ERR_VALIDATION');
    assert.equal(refused.status, 400);
    assert.match(refused.message, /invoice\.sent/);
    assert.ok(Array.isArray(refused.details?.issues));
    assert.equal(await client.unregisterTopic('invoice.sent'), true);
    assert.equal(await client.unregisterTopic('invoice.sent'), false);
    assert.equal(await client.getTopic('invoice.sent'), undefined);
  });

  it('maps a malformed topic to BUSBAR_ERR_INVALID_TOPIC and stores nothing of a refused batch', async () => {
    const client = createClient({ url: live.url });
    const head = (await client.read({ limit: 1 })).head;
    const refused = await client.publishBatch([{ type: 'fine.topic' }, { type: 'bad..topic' }]).catch((error: unknown) => error);
    assert.ok(refused instanceof BusbarError);
    assert.equal(refused.code, 'BUSBAR_ERR_INVALID_TOPIC');
    assert.equal((await client.read({ limit: 1 })).head, head);
  });

  it('reports stats and health', async () => {
    const client = createClient({ url: live.url });
    const stats = await client.stats();
    assert.ok(stats.total_published > 0);
    assert.equal(stats.log_head, (await client.read({ limit: 1 })).head);
    const health = await client.health();
    assert.deepEqual([health.status, health.ready, health.checks.store.status], ['ok', true, 'ok']);
  });

  it('retries a publish whose answer was lost with the same id, so the event is stored once', async () => {
    let attempts = 0;
    const bodies: string[] = [];
    // The first request reaches the server and commits; its answer is lost on the way back.
    const losingFetch: typeof fetch = async (input, init) => {
      attempts++;
      bodies.push(String(init?.body));
      const response = await fetch(input, init);
      if (attempts === 1) {
        await response.body?.cancel();
        throw new TypeError('fetch failed', { cause: new Error('socket hang up') });
      }
      return response;
    };
    const client = createClient({ url: live.url, fetch: losingFetch });
    const accepted = await client.publish('payment.captured', { amount: 10 });
    assert.equal(attempts, 2);
    assert.equal(bodies[0], bodies[1], 'the retry sends the same event, id included');
    const stored = [];
    for await (const event of client.readAll({ topics: 'payment.captured' })) stored.push(event);
    assert.deepEqual(stored.map((event) => [event.id, event.sequence]), [[accepted.id, accepted.position]]);
  });

  it('fails with BUSBAR_ERR_UNREACHABLE, naming the server, when nothing listens', async () => {
    const client = createClient({ url: `http://127.0.0.1:${await freePort()}`, retries: 1 });
    const failure = await client.publish('order.created', {}).catch((error: unknown) => error);
    assert.ok(failure instanceof BusbarError);
    assert.equal(failure.code, 'BUSBAR_ERR_UNREACHABLE');
    assert.match(failure.message, /at http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/);
  });

  it('refuses a url that is not http(s) with BUSBAR_ERR_INVALID_ARGUMENT', () => {
    assert.throws(() => createClient({ url: 'ftp://example.com' }), (error: unknown) => error instanceof BusbarError && error.code === 'BUSBAR_ERR_INVALID_ARGUMENT');
  });
});

/** A port nothing listens on: one the system just handed out and took back. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
