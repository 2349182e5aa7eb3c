import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { bodyOf, startTestServer, type TestServer } from './test-server.fixture.ts';

const orderSchema = {
  type: 'object',
  required: ['id', 'total'],
  properties: { id: { type: 'string' }, total: { type: 'number', minimum: 0 } },
};

describe('topics over HTTP', () => {
  const servers: TestServer[] = [];
  after(() => Promise.all(servers.map((server) => server.close())));
  const start = async (options = {}) => {
    const server = await startTestServer(options);
    servers.push(server);
    return server;
  };

  it('registers a topic with a schema, lists it, gets it and unregisters it', async () => {
    const t = await start();
    const created = await t.call('PUT', '/v1/topics/order.created', { schema: orderSchema, description: 'A new order' });
    assert.equal(created.statusCode, 201, created.body);
    assert.deepEqual(bodyOf(created), { topic: 'order.created', schema: orderSchema, description: 'A new order', published: 0, validated: true });
    const replaced = await t.call('PUT', '/v1/topics/order.created', { schema: orderSchema, description: 'An order' });
    assert.equal(replaced.statusCode, 200);
    assert.deepEqual(
      bodyOf(await t.call('GET', '/v1/topics')).topics.map((topic: { topic: string; description: string }) => [topic.topic, topic.description]),
      [['order.created', 'An order']],
    );
    assert.equal(bodyOf(await t.call('GET', '/v1/topics/order.created')).description, 'An order');
    assert.equal((await t.call('DELETE', '/v1/topics/order.created')).statusCode, 204);
    const gone = await t.call('GET', '/v1/topics/order.created');
    assert.equal(gone.statusCode, 404);
    assert.equal(bodyOf(gone).error.code, 'BUSBAR_ERR_NOT_FOUND');
    assert.equal((await t.call('DELETE', '/v1/topics/order.created')).statusCode, 404);
    assert.equal((await t.call('PUT', '/v1/topics/no..topic', {})).statusCode, 400);
  });

  it('enforces the schema on single publishes, batches and stream appends, with every problem listed', async () => {
    const t = await start();
    await t.call('PUT', '/v1/topics/order.created', { schema: orderSchema });
    const good = await t.call('POST', '/v1/events', { type: 'order.created', data: { id: 'o-1', total: 3 } });
    assert.equal(good.statusCode, 201);
    const bad = await t.call('POST', '/v1/events', { type: 'order.created', data: { id: 1, total: -1 } });
    assert.equal(bad.statusCode, 400);
    assert.equal(bodyOf(bad).error.code, 'BUSBAR_ERR_VALIDATION');
    assert.deepEqual(
      bodyOf(bad).error.details.issues.map((issue: { path: string[] }) => issue.path.join('.')),
      ['id', 'total'],
    );
    const head = await t.server.context.store.head();
    const batch = await t.call('POST', '/v1/events', [
      { type: 'order.created', data: { id: 'o-2', total: 1 } },
      { type: 'order.created', data: { id: 'o-3' } },
    ]);
    assert.equal(batch.statusCode, 400);
    assert.equal(bodyOf(batch).error.details.index, 1);
    const append = await t.call('POST', '/v1/streams/o-4/events', { events: [{ type: 'order.created', data: {} }] });
    assert.equal(append.statusCode, 400);
    assert.equal(await t.server.context.store.head(), head, 'nothing of the refused requests is in the log');
  });

  it('keeps registrations and enforces their schemas after a restart on the same file', async () => {
    const first = await startTestServer();
    await first.call('PUT', '/v1/topics/order.created', { schema: orderSchema, description: 'kept' });
    await first.call('PUT', '/v1/topics/order.dropped', {});
    await first.call('PUT', '/v1/topics/order.note', { description: 'no schema' });
    await first.call('DELETE', '/v1/topics/order.dropped');
    const second = await first.restart();
    servers.push(second);
    const topics = bodyOf(await second.call('GET', '/v1/topics')).topics;
    assert.deepEqual(
      topics.map((topic: { topic: string }) => topic.topic).sort(),
      ['order.created', 'order.note'],
    );
    assert.deepEqual(bodyOf(await second.call('GET', '/v1/topics/order.created')).schema, orderSchema);
    const refused = await second.call('POST', '/v1/events', { type: 'order.created', data: { id: 'x' } });
    assert.equal(refused.statusCode, 400);
    assert.equal(bodyOf(refused).error.code, 'BUSBAR_ERR_VALIDATION');
    // Only the newest snapshot of the registrations is kept.
    const stored = await second.server.context.store.readStream('busbar.topics');
    assert.equal(stored.length, 1);
  });

  it('refuses an invalid JSON Schema and keeps the registration it had', async () => {
    const t = await start();
    await t.call('PUT', '/v1/topics/order.created', { schema: orderSchema });
    const response = await t.call('PUT', '/v1/topics/order.created', { schema: { type: 'object', properties: { id: { minLength: 'two' } } } });
    assert.equal(response.statusCode, 400);
    assert.equal(bodyOf(response).error.code, 'BUSBAR_ERR_INVALID_ARGUMENT');
    assert.match(bodyOf(response).error.message, /not a valid JSON Schema/);
    assert.deepEqual(bodyOf(await t.call('GET', '/v1/topics/order.created')).schema, orderSchema);
  });

  it('understands JSON Schema 2020-12 when the schema says so', async () => {
    const t = await start();
    const schema = { $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'array', prefixItems: [{ type: 'string' }] };
    assert.equal((await t.call('PUT', '/v1/topics/pair.made', { schema })).statusCode, 201);
    assert.equal((await t.call('POST', '/v1/events', { type: 'pair.made', data: ['a', 1] })).statusCode, 201);
    assert.equal((await t.call('POST', '/v1/events', { type: 'pair.made', data: [1, 'a'] })).statusCode, 400);
  });

  it('checks string formats such as email and date-time', async () => {
    const t = await start();
    const schema = { type: 'object', properties: { email: { type: 'string', format: 'email' }, at: { type: 'string', format: 'date-time' } } };
    assert.equal((await t.call('PUT', '/v1/topics/user.joined', { schema })).statusCode, 201);
    const good = { email: 'ada@example.com', at: '2026-12-02T10:00:00Z' };
    assert.equal((await t.call('POST', '/v1/events', { type: 'user.joined', data: good })).statusCode, 201);
    const bad = await t.call('POST', '/v1/events', { type: 'user.joined', data: { email: 'not an address', at: 'yesterday' } });
    assert.equal(bad.statusCode, 400);
    assert.equal(bodyOf(bad).error.code, 'BUSBAR_ERR_VALIDATION');
    assert.equal(bodyOf(bad).error.details.issues.length, 2);
  });

  it('accepts only registered topics when the server is strict', async () => {
    const t = await start({ strict: true });
    const unknown = await t.call('POST', '/v1/events', { type: 'order.created', data: {} });
    assert.equal(unknown.statusCode, 404);
    assert.equal(bodyOf(unknown).error.code, 'BUSBAR_ERR_UNKNOWN_TOPIC');
    await t.call('PUT', '/v1/topics/order.created', {});
    assert.equal((await t.call('POST', '/v1/events', { type: 'order.created', data: {} })).statusCode, 201);
    const batch = await t.call('POST', '/v1/events', [
      { type: 'order.created', data: {} },
      { type: 'order.unknown', data: {} },
    ]);
    assert.equal(batch.statusCode, 404);
    assert.equal(bodyOf(batch).error.details.index, 1);
  });
});
