import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ApiKey } from './auth.ts';
import { SSE_PATH } from './streaming/index.ts';
import { bodyOf, secretFor, startTestServer, type TestServer } from './test-server.fixture.ts';

const keys: ApiKey[] = [
  { name: 'publisher', key: secretFor('publisher'), publish: ['orders.>'], subscribe: ['orders.*'] },
  { name: 'reader', key: secretFor('reader'), subscribe: ['orders.>'] },
  { name: 'nobody', key: secretFor('nobody') },
  { name: 'admin', key: secretFor('admin'), admin: true },
];
type KeyName = 'publisher' | 'reader' | 'nobody' | 'admin';

interface Row {
  method: string;
  /** The route as registered. */
  route: string;
  /** The request actually made (parameters filled in). */
  url: string;
  body?: unknown;
  /** A key that is valid but lacks the right; undefined when any key will do. */
  wrong?: KeyName;
  right: KeyName;
  /** The status the right key gets. */
  ok: number;
}

const orders = (n: number) => ({ type: 'orders.created', id: `order-${n}`, data: { n } });

/** Every HTTP endpoint: keep it in step with the routes (the last test checks). */
const matrix: Row[] = [
  { method: 'POST', route: '/v1/events', url: '/v1/events', body: { type: 'orders.created', data: {} }, wrong: 'reader', right: 'publisher', ok: 201 },
  { method: 'GET', route: '/v1/events', url: '/v1/events?topics=orders.*', wrong: 'nobody', right: 'reader', ok: 200 },
  { method: 'GET', route: '/v1/events/:id', url: '/v1/events/order-1', wrong: 'nobody', right: 'reader', ok: 200 },
  { method: 'POST', route: '/v1/streams/:stream/events', url: '/v1/streams/cart-9/events', body: { events: [orders(9)] }, wrong: 'reader', right: 'publisher', ok: 201 },
  { method: 'GET', route: '/v1/streams/:stream', url: '/v1/streams/cart-1', wrong: 'nobody', right: 'reader', ok: 200 },
  { method: 'PUT', route: '/v1/topics/:topic', url: '/v1/topics/orders.paid', body: { description: 'paid' }, wrong: 'publisher', right: 'admin', ok: 201 },
  { method: 'GET', route: '/v1/topics', url: '/v1/topics', right: 'nobody', ok: 200 },
  { method: 'GET', route: '/v1/topics/:topic', url: '/v1/topics/orders.created', right: 'nobody', ok: 200 },
  { method: 'DELETE', route: '/v1/topics/:topic', url: '/v1/topics/orders.shipped', wrong: 'publisher', right: 'admin', ok: 204 },
  { method: 'GET', route: '/v1/subscriptions', url: '/v1/subscriptions', wrong: 'publisher', right: 'admin', ok: 200 },
  { method: 'GET', route: '/v1/dead-letters', url: '/v1/dead-letters', wrong: 'publisher', right: 'admin', ok: 200 },
  { method: 'POST', route: '/v1/dead-letters/redrive', url: '/v1/dead-letters/redrive', body: {}, wrong: 'publisher', right: 'admin', ok: 200 },
  { method: 'GET', route: '/v1/stats', url: '/v1/stats', wrong: 'publisher', right: 'admin', ok: 200 },
  { method: 'GET', route: '/metrics', url: '/metrics', wrong: 'publisher', right: 'admin', ok: 200 },
  { method: 'GET', route: '/v1/cdc', url: '/v1/cdc', wrong: 'publisher', right: 'admin', ok: 200 },
  { method: 'GET', route: '/v1/openapi.json', url: '/v1/openapi.json', right: 'nobody', ok: 200 },
];
/** Answer without any key. */
const publicRoutes = ['/v1/health', '/v1/health/live', '/v1/health/ready'];

let t: TestServer;
const bearer = (name: KeyName) => ({ authorization: `Bearer ${secretFor(name)}` });

before(async () => {
  t = await startTestServer({ apiKeys: keys });
  const admin = bearer('admin');
  for (const [url, body] of [
    ['/v1/events', orders(1)],
    ['/v1/streams/cart-1/events', { events: [orders(2)] }],
    ['/v1/topics/orders.created', {}],
  ] as const) {
    const response = await t.call(url.startsWith('/v1/topics') ? 'PUT' : 'POST', url, body, admin);
    assert.ok(response.statusCode < 300, response.body);
  }
});
after(() => t.close());

describe('the auth matrix', () => {
  for (const row of matrix) {
    describe(`${row.method} ${row.route}`, () => {
      it('answers 401 BUSBAR_ERR_UNAUTHORIZED without a key and with an unknown one', async () => {
        const attempts: Record<string, string>[] = [{}, { authorization: 'Bearer unknown-key-0123456789abcdef' }];
        for (const headers of attempts) {
          const response = await t.call(row.method as 'GET', row.url, row.body, headers);
          assert.equal(response.statusCode, 401, response.body);
          assert.equal(bodyOf(response).error.code, 'BUSBAR_ERR_UNAUTHORIZED');
        }
      });

      if (row.wrong !== undefined) {
        const wrong = row.wrong;
        it(`answers 403 BUSBAR_ERR_FORBIDDEN to a key without the right (${wrong})`, async () => {
          const response = await t.call(row.method as 'GET', row.url, row.body, bearer(wrong));
          assert.equal(response.statusCode, 403, response.body);
          assert.equal(bodyOf(response).error.code, 'BUSBAR_ERR_FORBIDDEN');
        });
      }

      it(`answers ${row.ok} to a key with the right (${row.right})`, async () => {
        if (row.method === 'DELETE') await t.call('PUT', row.url, {}, bearer('admin'));
        const response = await t.call(row.method as 'GET', row.url, row.body, bearer(row.right));
        assert.equal(response.statusCode, row.ok, response.body);
      });
    });
  }

  for (const url of publicRoutes) {
    it(`answers GET ${url} without a key`, async () => {
      assert.equal((await t.call('GET', url)).statusCode, 200);
    });
  }

  it('has a row for every endpoint the server registered', () => {
    const covered = new Set([...matrix.map((row) => `${row.method} ${row.route}`), ...publicRoutes.map((url) => `GET ${url}`)]);
    const registered = t.server.endpoints.filter((endpoint) => endpoint.access !== 'self').map((endpoint) => `${endpoint.method} ${endpoint.url}`);
    assert.deepEqual(registered.filter((route) => !covered.has(route)), [], 'endpoints without a row in the auth matrix');
    assert.deepEqual([...covered].filter((route) => !registered.includes(route)), [], 'rows for endpoints that do not exist');
    for (const endpoint of t.server.endpoints) {
      if (publicRoutes.includes(endpoint.url)) assert.equal(endpoint.access, 'public');
      else assert.notEqual(endpoint.access, 'public', `${endpoint.method} ${endpoint.url} must not be public`);
    }
  });

  it('lets the Server-Sent Events endpoint take its key from ?token= and check the subscribe right', async () => {
    const { url } = await t.server.listen();
    const open = async (query: string) => {
      const abort = new AbortController();
      const response = await fetch(`${url}${SSE_PATH}?topics=orders.*${query}`, { signal: abort.signal });
      const status = response.status;
      abort.abort();
      await response.body?.cancel().catch(() => {});
      return status;
    };
    assert.equal(await open(''), 401);
    assert.equal(await open(`&token=${secretFor('nobody')}`), 403);
    assert.equal(await open(`&token=${secretFor('reader')}`), 200);
  });
});

describe('rate limits', () => {
  let limited: TestServer;
  before(async () => {
    limited = await startTestServer({ apiKeys: keys, rateLimit: { max: 3, timeWindow: 60_000 } });
  });
  after(() => limited.close());

  it('answers 429 BUSBAR_ERR_RATE_LIMITED with Retry-After once a key has used its requests, and counts each key apart', async () => {
    for (let n = 0; n < 3; n++) assert.equal((await limited.call('GET', '/v1/topics', undefined, bearer('reader'))).statusCode, 200);
    const refused = await limited.call('GET', '/v1/topics', undefined, bearer('reader'));
    assert.equal(refused.statusCode, 429, refused.body);
    assert.equal(bodyOf(refused).error.code, 'BUSBAR_ERR_RATE_LIMITED');
    assert.ok(Number(refused.headers['retry-after']) > 0, `retry-after: ${String(refused.headers['retry-after'])}`);
    assert.equal((await limited.call('GET', '/v1/topics', undefined, bearer('nobody'))).statusCode, 200);
    assert.equal((await limited.call('GET', '/v1/health')).statusCode, 200, 'health probes are not rate limited');
  });
});
