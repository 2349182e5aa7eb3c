// The HTTP API beyond a single publish: batches, CloudEvents binary mode,
// topics with a JSON Schema, and streams with expected versions.
import assert from 'node:assert/strict';
import { createServer } from '../src/server/index.ts';
import { createMemoryStore } from '../src/store/index.ts';

// An embedding program may hand the server its own store (here in memory).
const store = createMemoryStore();
const server = await createServer({ port: 0, store, logger: false });
const { url } = await server.listen();

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, body: response.status === 204 ? undefined : await response.json() };
}

// A topic with a JSON Schema: enforced on every publish path, kept across restarts.
const schema = { type: 'object', required: ['id', 'total'], properties: { total: { type: 'number', minimum: 0 } } };
assert.equal((await call('PUT', '/v1/topics/order.created', { schema, description: 'A new order' })).status, 201);
const invalid = await call('POST', '/v1/events', { type: 'order.created', data: { id: 'o-1' } });
assert.equal(invalid.status, 400);
assert.equal(invalid.body.error.code, 'BUSBAR_ERR_VALIDATION');

// A batch is all or nothing, and lands at consecutive positions.
const batch = await call('POST', '/v1/events', [
  { type: 'order.created', id: 'o-1', data: { id: 'o-1', total: 10 } },
  { type: 'order.paid', id: 'o-1-paid', data: { id: 'o-1' } },
]);
assert.equal(batch.status, 201);
const [created, paid] = batch.body.events as { id: string; position: number }[];
assert.equal(paid!.position, created!.position + 1);

// A retry with the same id is answered with the original position and stored once.
const retried = await call('POST', '/v1/events', { type: 'order.paid', id: 'o-1-paid', data: { id: 'o-1' } });
assert.deepEqual(retried.body, paid);

// Binary mode: attributes in ce-* headers, the body is the data.
const binary = await call('POST', '/v1/events', 'label printed', {
  'content-type': 'text/plain',
  'ce-specversion': '1.0',
  'ce-id': 'label-1',
  'ce-source': 'urn:printer',
  'ce-type': 'label.printed',
});
assert.equal(binary.status, 201);
assert.equal((await call('GET', '/v1/events/label-1')).body.data, 'label printed');

// Streams: append with an expected version; a stale one is a 409.
const opened = await call('POST', '/v1/streams/account-1/events', {
  expectedVersion: 'no_stream',
  events: [{ type: 'account.opened', data: { owner: 'Ada' } }],
});
assert.deepEqual(opened.body.version, 1);
const stale = await call('POST', '/v1/streams/account-1/events', {
  expectedVersion: 'no_stream',
  events: [{ type: 'account.deposited', data: { amount: 5 } }],
});
assert.equal(stale.status, 409);
assert.deepEqual(stale.body.error.details, { stream: 'account-1', expected: 'no_stream', actual: 1 });
const account = await call('GET', '/v1/streams/account-1');
assert.equal(account.body.version, 1);

await server.close();
await store.close(); // the server leaves a store it was given open
console.log('batch, binary mode, schema and stream checks passed');
