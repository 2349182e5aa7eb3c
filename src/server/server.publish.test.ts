import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CloudEvent, HTTP } from 'cloudevents';
import { bodyOf, startTestServer, type TestServer } from './test-server.fixture.ts';

let t: TestServer;
before(async () => {
  t = await startTestServer({ source: 'https://shop.example' });
});
after(() => t.close());

const store = () => t.server.context.store;

async function publish(body: unknown, headers?: Record<string, string>) {
  const response = await t.call('POST', '/v1/events', body, headers);
  assert.equal(response.statusCode, 201, response.body);
  return bodyOf(response);
}

describe('publishing over HTTP', () => {
  it('publishes a plain JSON event and answers with the id and the position it has in the log', async () => {
    const { id, position } = await publish({ type: 'order.created', data: { id: 'o-1', total: 42 }, subject: 'o-1' });
    const logged = await store().getEvent(id);
    assert.equal(logged?.position, position);
    assert.equal(logged?.event.type, 'order.created');
    assert.deepEqual(logged?.event.data, { id: 'o-1', total: 42 });
    assert.equal(logged?.event.subject, 'o-1');
    assert.equal(logged?.event.source, 'https://shop.example');
  });

  it('keeps a structured CloudEvent as sent, extensions included, and reads it back equal', async () => {
    const sent = {
      specversion: '1.0',
      id: 'structured-1',
      source: 'urn:test',
      type: 'order.paid',
      time: '2024-05-01T10:00:00.000Z',
      subject: 'o-2',
      datacontenttype: 'application/json',
      data: { id: 'o-2', lines: [1, 2, 3] },
      partitionkey: 'o-2',
      tenant: 'acme',
    };
    const { id, position } = await publish(JSON.stringify(sent), { 'content-type': 'application/cloudevents+json' });
    assert.equal(id, 'structured-1');
    const read = bodyOf(await t.call('GET', `/v1/events/${id}`));
    assert.deepEqual(read, { ...sent, sequence: position });
  });

  it('publishes a batch in order and answers one id and position per event', async () => {
    const batch = [1, 2, 3].map((n) => ({ specversion: '1.0', id: `batch-${n}`, source: 'urn:test', type: 'batch.item', data: { n } }));
    const { events } = await publish(JSON.stringify(batch), { 'content-type': 'application/cloudevents-batch+json' });
    assert.deepEqual(
      events.map((each: { id: string }) => each.id),
      ['batch-1', 'batch-2', 'batch-3'],
    );
    const positions = events.map((each: { position: number }) => each.position);
    assert.deepEqual(positions, [...positions].sort((a, b) => a - b));
    for (const [index, each] of events.entries()) {
      assert.deepEqual((await store().getEvent(each.id))?.event.data, { n: index + 1 });
    }
  });

  it('commits each batch at consecutive positions while other publishes run at the same time', async () => {
    const batches = Array.from({ length: 4 }, (_, b) => Array.from({ length: 8 }, (_, n) => ({ type: 'busy.batch', data: { b, n } })));
    const singles = Array.from({ length: 8 }, (_, n) => t.call('POST', '/v1/events', { type: 'busy.single', data: { n } }));
    const answers = await Promise.all([...batches.map((batch) => t.call('POST', '/v1/events', batch)), ...singles]);
    for (const answer of answers) assert.equal(answer.statusCode, 201, answer.body);
    for (const answer of answers.slice(0, batches.length)) {
      const positions = bodyOf(answer).events.map((each: { position: number }) => each.position);
      assert.deepEqual(positions, positions.map((_: number, n: number) => positions[0] + n));
    }
  });

  it('accepts a plain JSON array as a batch', async () => {
    const { events } = await publish([
      { type: 'plain.one', data: 1 },
      { type: 'plain.two', data: 2 },
    ]);
    assert.equal(events.length, 2);
    assert.equal((await store().getEvent(events[1].id))?.event.type, 'plain.two');
  });

  it('takes binary mode: attributes from ce-* headers, JSON data parsed, text as a string, other bytes as data_base64', async () => {
    const headers = (id: string, type: string) => ({ 'ce-specversion': '1.0', 'ce-id': id, 'ce-source': 'urn:binary', 'ce-type': 'file.stored', 'content-type': type });
    await publish('{"name":"a.txt"}', { ...headers('bin-json', 'application/json'), 'ce-subject': 'caf%C3%A9', 'ce-priority': '5' });
    await publish('hello', headers('bin-text', 'text/plain; charset=utf-8'));
    await publish(Buffer.from([0, 1, 2, 255]), headers('bin-bytes', 'application/octet-stream'));
    const json = bodyOf(await t.call('GET', '/v1/events/bin-json'));
    assert.deepEqual(json.data, { name: 'a.txt' });
    assert.equal(json.subject, 'café');
    assert.equal(json.priority, 5);
    assert.equal(json.datacontenttype, 'application/json');
    assert.equal(bodyOf(await t.call('GET', '/v1/events/bin-text')).data, 'hello');
    const bytes = bodyOf(await t.call('GET', '/v1/events/bin-bytes'));
    assert.equal(bytes.data, undefined);
    assert.equal(bytes.data_base64, Buffer.from([0, 1, 2, 255]).toString('base64'));
  });

  it('accepts what the cloudevents SDK emits in binary and structured mode', async () => {
    const event = new CloudEvent({ id: 'sdk-1', source: 'urn:sdk', type: 'sdk.sent', data: { ok: true } });
    for (const message of [HTTP.binary(event), HTTP.structured(event.cloneWith({ id: 'sdk-2' }))]) {
      await publish(message.body as string, message.headers as Record<string, string>);
    }
    for (const id of ['sdk-1', 'sdk-2']) {
      const read = HTTP.toEvent({ headers: { 'content-type': 'application/cloudevents+json' }, body: (await t.call('GET', `/v1/events/${id}`)).body }) as CloudEvent;
      assert.equal(read.id, id);
      assert.deepEqual(read.data, { ok: true });
    }
  });

  it('answers a retried event (same id) with its original position and stores it once', async () => {
    const event = { type: 'payment.made', id: 'retry-1', data: { amount: 5 } };
    const first = await publish(event);
    const headBefore = await store().head();
    const second = await publish(event);
    assert.deepEqual(second, first);
    assert.equal(await store().head(), headBefore);
  });

  it('publishes nothing from a batch with one bad event and names the event', async () => {
    const headBefore = await store().head();
    const response = await t.call('POST', '/v1/events', [
      { type: 'good.one', data: 1 },
      { type: 'good.two', data: 2 },
      { type: 'bad..topic', data: 3 },
    ]);
    assert.equal(response.statusCode, 400);
    assert.equal(bodyOf(response).error.code, 'BUSBAR_ERR_INVALID_TOPIC');
    assert.equal(bodyOf(response).error.details.index, 2);
    assert.match(bodyOf(response).error.message, /^event 2: /);
    assert.equal(await store().head(), headBefore);
  });
});

describe('reading the log over HTTP', () => {
  let reader: TestServer;
  before(async () => {
    reader = await startTestServer();
    for (let n = 1; n <= 6; n++) {
      const type = n % 2 === 0 ? 'even.number' : 'odd.number';
      const response = await reader.call('POST', '/v1/events', { type, data: { n }, subject: n <= 3 ? 'low' : 'high' });
      assert.equal(response.statusCode, 201);
    }
  });
  after(() => reader.close());

  const numbers = (body: { events: { data: { n: number } }[] }) => body.events.map((event) => event.data.n);

  it('reads pages from a position, with the last position looked at and the head', async () => {
    const first = bodyOf(await reader.call('GET', '/v1/events?limit=4'));
    assert.deepEqual(numbers(first), [1, 2, 3, 4]);
    assert.equal(first.last, 4);
    assert.equal(first.head, 6);
    assert.equal(first.events[0].sequence, 1);
    const second = bodyOf(await reader.call('GET', `/v1/events?after=${first.last}&limit=4`));
    assert.deepEqual(numbers(second), [5, 6]);
    assert.equal(second.last, 6);
  });

  it('filters by topic patterns and by subject', async () => {
    assert.deepEqual(numbers(bodyOf(await reader.call('GET', '/v1/events?topics=even.*'))), [2, 4, 6]);
    assert.deepEqual(numbers(bodyOf(await reader.call('GET', '/v1/events?topics=even.number,odd.>'))), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(numbers(bodyOf(await reader.call('GET', '/v1/events?topics=odd.*&subject=high'))), [5]);
  });

  it('answers 404 for an event id it does not have', async () => {
    const response = await reader.call('GET', '/v1/events/no-such-id');
    assert.equal(response.statusCode, 404);
    assert.equal(bodyOf(response).error.code, 'BUSBAR_ERR_NOT_FOUND');
  });

  it('refuses an invalid pattern and a limit over the page size with 400', async () => {
    const pattern = await reader.call('GET', '/v1/events?topics=a..b');
    assert.equal(pattern.statusCode, 400);
    assert.equal(bodyOf(pattern).error.code, 'BUSBAR_ERR_INVALID_PATTERN');
    const limit = await reader.call('GET', '/v1/events?limit=100000');
    assert.equal(limit.statusCode, 400);
    assert.equal(bodyOf(limit).error.code, 'BUSBAR_ERR_INVALID_ARGUMENT');
  });

  it('serves the same over a real socket to fetch', async () => {
    const { url } = await reader.server.listen();
    const posted = await fetch(`${url}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'over.the.wire', data: { ok: 1 } }),
    });
    assert.equal(posted.status, 201);
    const { id, position } = (await posted.json()) as { id: string; position: number };
    const read = await fetch(`${url}/v1/events/${id}`);
    assert.equal(read.headers.get('content-type'), 'application/cloudevents+json; charset=utf-8');
    const event = (await read.json()) as { sequence: number; data: unknown };
    assert.equal(event.sequence, position);
    assert.deepEqual(event.data, { ok: 1 });
  });
});
