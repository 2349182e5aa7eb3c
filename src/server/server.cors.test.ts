import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { secretFor, startTestServer, type TestServer } from './test-server.fixture.ts';

const app = 'https://app.example.com';
const key = { name: 'browser', key: secretFor('browser'), publish: ['>'], subscribe: ['>'] };

describe('CORS for browser pages on other sites', () => {
  const servers: TestServer[] = [];
  after(() => Promise.all(servers.map((server) => server.close())));
  const start = async (corsOrigins?: string[]) => {
    const server = await startTestServer({ apiKeys: [key], ...(corsOrigins === undefined ? {} : { corsOrigins }) });
    servers.push(server);
    return server;
  };

  it('answers a preflight from an allowed origin without credentials, and lets the real request through with its key', async () => {
    const t = await start([app]);
    const preflight = await t.call('OPTIONS', '/v1/events', undefined, {
      origin: app,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization, content-type',
    });
    assert.equal(preflight.statusCode, 204);
    assert.equal(preflight.headers['access-control-allow-origin'], app);
    assert.match(String(preflight.headers['access-control-allow-headers']), /authorization/);
    const published = await t.call('POST', '/v1/events', { type: 'page.viewed', data: {} }, { origin: app, authorization: `Bearer ${key.key}` });
    assert.equal(published.statusCode, 201);
    assert.equal(published.headers['access-control-allow-origin'], app);
    const refused = await t.call('POST', '/v1/events', { type: 'page.viewed', data: {} }, { origin: app });
    assert.equal(refused.statusCode, 401, 'CORS does not open the API to callers without a key');
  });

  it('gives no CORS headers to an origin it was not told about', async () => {
    const t = await start([app]);
    const response = await t.call('GET', '/v1/events', undefined, { origin: 'https://evil.example.net', authorization: `Bearer ${key.key}` });
    assert.equal(response.headers['access-control-allow-origin'], undefined);
  });

  it('sends no CORS headers at all unless origins are configured', async () => {
    const t = await start();
    const response = await t.call('GET', '/v1/events', undefined, { origin: app, authorization: `Bearer ${key.key}` });
    assert.equal(response.statusCode, 200);
    assert.equal(response.headers['access-control-allow-origin'], undefined);
  });
});
