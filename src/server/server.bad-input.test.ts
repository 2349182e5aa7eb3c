import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { bodyOf, startTestServer, type TestServer } from './test-server.fixture.ts';

const MAX_BODY = 4096;

let t: TestServer;
before(async () => {
  t = await startTestServer({ limits: { maxBodyBytes: MAX_BODY } });
  const registered = await t.call('PUT', '/v1/topics/order.created', { schema: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } } });
  assert.equal(registered.statusCode, 201, registered.body);
});
after(() => t.close());

interface Row {
  name: string;
  method: 'GET' | 'POST' | 'PUT';
  url: string;
  body?: string | Buffer;
  contentType?: string;
  status: number;
  code: string;
}

const json = 'application/json';
const rows: Row[] = [
  { name: 'malformed JSON', method: 'POST', url: '/v1/events', body: '{"type": "order.created",', contentType: json, status: 400, code: 'BUSBAR_ERR_INVALID_JSON' },
  { name: 'a malformed CloudEvents batch', method: 'POST', url: '/v1/events', body: '[{]', contentType: 'application/cloudevents-batch+json', status: 400, code: 'BUSBAR_ERR_INVALID_JSON' },
  { name: 'a wrong content type', method: 'POST', url: '/v1/events', body: 'type=order.created', contentType: 'application/x-www-form-urlencoded', status: 415, code: 'BUSBAR_ERR_UNSUPPORTED_MEDIA_TYPE' },
  { name: 'a body without a content type', method: 'POST', url: '/v1/events', body: '{"type":"a.b"}', status: 415, code: 'BUSBAR_ERR_UNSUPPORTED_MEDIA_TYPE' },
  { name: 'a non-JSON body for a topic', method: 'PUT', url: '/v1/topics/x.y', body: 'schema', contentType: 'text/plain', status: 415, code: 'BUSBAR_ERR_UNSUPPORTED_MEDIA_TYPE' },
  { name: 'a missing type', method: 'POST', url: '/v1/events', body: '{"data": {"id": "o-1"}}', contentType: json, status: 400, code: 'BUSBAR_ERR_INVALID_EVENT' },
  { name: 'an empty body', method: 'POST', url: '/v1/events', body: '', contentType: json, status: 400, code: 'BUSBAR_ERR_INVALID_EVENT' },
  { name: 'a structured event without specversion', method: 'POST', url: '/v1/events', body: '{"type":"a.b","id":"1","source":"s"}', contentType: 'application/cloudevents+json', status: 400, code: 'BUSBAR_ERR_INVALID_EVENT' },
  { name: 'a batch that is not an array', method: 'POST', url: '/v1/events', body: '{"specversion":"1.0"}', contentType: 'application/cloudevents-batch+json', status: 400, code: 'BUSBAR_ERR_INVALID_EVENT' },
  { name: 'an invalid topic', method: 'POST', url: '/v1/events', body: '{"type": "order..created"}', contentType: json, status: 400, code: 'BUSBAR_ERR_INVALID_TOPIC' },
  { name: 'a schema violation', method: 'POST', url: '/v1/events', body: '{"type": "order.created", "data": {"id": 7}}', contentType: json, status: 400, code: 'BUSBAR_ERR_VALIDATION' },
  { name: 'a schema violation in a stream append', method: 'POST', url: '/v1/streams/s-1/events', body: '{"events": [{"type": "order.created", "data": {}}]}', contentType: json, status: 400, code: 'BUSBAR_ERR_VALIDATION' },
  { name: 'an invalid expected version', method: 'POST', url: '/v1/streams/s-1/events', body: '{"expectedVersion": "soon", "events": [{"type": "a.b"}]}', contentType: json, status: 400, code: 'BUSBAR_ERR_INVALID_ARGUMENT' },
  { name: 'an oversized body', method: 'POST', url: '/v1/events', body: JSON.stringify({ type: 'big.one', data: 'x'.repeat(MAX_BODY) }), contentType: json, status: 413, code: 'BUSBAR_ERR_PAYLOAD_TOO_LARGE' },
  { name: 'an oversized binary body', method: 'POST', url: '/v1/events', body: Buffer.alloc(MAX_BODY + 1), contentType: 'application/octet-stream', status: 413, code: 'BUSBAR_ERR_PAYLOAD_TOO_LARGE' },
  { name: 'an invalid JSON Schema', method: 'PUT', url: '/v1/topics/x.y', body: '{"schema": {"type": "objekt"}}', contentType: json, status: 400, code: 'BUSBAR_ERR_INVALID_ARGUMENT' },
  { name: 'an unknown route', method: 'GET', url: '/v2/events', status: 404, code: 'BUSBAR_ERR_NOT_FOUND' },
  { name: 'an unknown method on a known path', method: 'PUT', url: '/v1/events', body: '{}', contentType: json, status: 404, code: 'BUSBAR_ERR_NOT_FOUND' },
];

describe('bad input over HTTP', () => {
  for (const row of rows) {
    it(`answers ${row.name} with ${row.status} ${row.code}, publishes nothing and stays healthy`, async () => {
      const headBefore = await t.server.context.store.head();
      const response = await t.server.app.inject({
        method: row.method,
        url: row.url,
        payload: row.body,
        headers: row.contentType === undefined ? {} : { 'content-type': row.contentType },
      });
      assert.equal(response.statusCode, row.status, response.body);
      assert.match(response.headers['content-type'] as string, /^application\/json/);
      const { error } = bodyOf(response);
      assert.equal(error.code, row.code);
      assert.equal(typeof error.message, 'string');
      assert.ok(error.message.length > 0);
      assert.equal(await t.server.context.store.head(), headBefore);
      assert.equal((await t.call('GET', '/v1/health')).statusCode, 200);
    });
  }

  it('answers a huge header with 431 on a real socket and keeps serving', async () => {
    const { url } = await t.server.listen();
    const { port } = new URL(url);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1');
      let received = '';
      socket.on('data', (chunk) => (received += chunk.toString('latin1')));
      socket.on('end', () => resolve(received));
      socket.on('close', () => resolve(received));
      socket.on('error', reject);
      socket.write(`GET /v1/health HTTP/1.1\r\nHost: localhost\r\nX-Huge: ${'h'.repeat(32 * 1024)}\r\n\r\n`);
    });
    assert.match(answer, /^HTTP\/1\.1 431 /);
    const health = await fetch(`${url}/v1/health`);
    assert.equal(health.status, 200);
    assert.equal(((await health.json()) as { ready: boolean }).ready, true);
  });
});
