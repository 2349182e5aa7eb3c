import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { describe, it } from 'node:test';
import { createBus } from '../core/bus.ts';
import { BusbarError } from '../core/errors.ts';
import { createMemoryStore } from '../store/memory/index.ts';
import { createServer } from './server.ts';
import { startTestServer } from './test-server.fixture.ts';

function invalidOption(option: string) {
  return (error: unknown) => error instanceof BusbarError && error.code === 'BUSBAR_ERR_INVALID_ARGUMENT' && String(error.details?.option).includes(option);
}

describe('the server’s life', () => {
  it('listens on a random port of 127.0.0.1 and answers there', async () => {
    const t = await startTestServer();
    try {
      const { url } = await t.server.listen();
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(t.server.url, url);
      assert.notEqual(new URL(url).port, '2872');
      assert.equal((await fetch(`${url}/v1/health/live`)).status, 200);
      assert.ok(existsSync(t.path), 'the SQLite file was created');
    } finally {
      await t.close();
    }
  });

  it('lets a request in flight finish when it closes, then refuses connections and closes the store it opened', async () => {
    const t = await startTestServer();
    const { url } = await t.server.listen();
    const { port } = new URL(url);
    const body = JSON.stringify({ type: 'order.created', id: 'in-flight', data: { id: 'o-1' } });
    const answered = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const call = request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/events', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (response) => {
        let text = '';
        response.on('data', (chunk) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
      });
      call.on('error', reject);
      // Half the body now: the request is in flight when close() begins.
      call.write(body.slice(0, 10));
      setTimeout(() => call.end(body.slice(10)), 100);
    });
    await new Promise((resolve) => setTimeout(resolve, 30));
    const store = t.server.context.store;
    const closed = t.server.close();
    const { status, text } = await answered;
    await closed;
    assert.equal(status, 201, text);
    assert.equal(JSON.parse(text).id, 'in-flight');
    await assert.rejects(fetch(`${url}/v1/health/live`));
    await assert.rejects(store.head(), /closed/);
    await t.close();
  });

  it('refuses options that contradict each other or are out of range', async () => {
    const store = createMemoryStore();
    await assert.rejects(createServer({ logger: false, bus: createBus({ store }) }), invalidOption('bus'));
    await assert.rejects(createServer({ logger: false, data: 'a.db', postgres: 'postgres://localhost/x' }), invalidOption('postgres'));
    await assert.rejects(createServer({ logger: false, store, data: 'a.db' }), invalidOption('data'));
    await assert.rejects(createServer({ logger: false, store, port: 70_000 }), invalidOption('port'));
    await assert.rejects(createServer({ logger: false, store, limits: { maxBodyBytes: 0 } }), invalidOption('limits.maxBodyBytes'));
    await assert.rejects(createServer({ logger: false, store, apiKeys: [{ name: 'k', key: 'too-short' }] }), invalidOption('apiKeys'));
    await store.close();
  });
});
