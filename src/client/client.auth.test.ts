import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BusbarError, createClient, type WebSocketConstructor } from './index.ts';
import { eventually, type LiveServer, startLiveServer } from './live-server.fixture.ts';

const KEYS = {
  shop: 'shop-secret-0123456789abcdefghij',
  dashboard: 'dash-secret-0123456789abcdefghij',
};

function countingWebSocket(): { WebSocket: WebSocketConstructor; opened: () => number } {
  let count = 0;
  class Counting extends WebSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols);
      count++;
    }
  }
  return { WebSocket: Counting, opened: () => count };
}

describe('the client with API keys', () => {
  let live: LiveServer;
  before(async () => {
    live = await startLiveServer({
      apiKeys: [
        { name: 'shop', key: KEYS.shop, publish: ['order.>'], subscribe: ['order.>'] },
        { name: 'dashboard', key: KEYS.dashboard, subscribe: ['order.*'] },
      ],
    });
  });
  after(() => live.close());

  it('sends its key: publishing with the right key works, without one is BUSBAR_ERR_UNAUTHORIZED (401)', async () => {
    const accepted = await createClient({ url: live.url, apiKey: KEYS.shop }).publish('order.created', { id: 'o-1' });
    assert.ok(accepted.position >= 1);
    const refused = await createClient({ url: live.url }).publish('order.created', {}).catch((error: unknown) => error);
    assert.ok(refused instanceof BusbarError);
    assert.deepEqual([refused.code, refused.status], ['BUSBAR_ERR_UNAUTHORIZED', 401]);
  });

  it('maps a missing right to BUSBAR_ERR_FORBIDDEN (403)', async () => {
    const refused = await createClient({ url: live.url, apiKey: KEYS.dashboard }).publish('order.created', {}).catch((error: unknown) => error);
    assert.ok(refused instanceof BusbarError);
    assert.deepEqual([refused.code, refused.status], ['BUSBAR_ERR_FORBIDDEN', 403]);
  });

  it('subscribes over WebSocket and SSE with its key', async () => {
    const reader = createClient({ url: live.url, apiKey: KEYS.dashboard });
    const overWs: unknown[] = [];
    const overSse: unknown[] = [];
    const ws = reader.subscribe('order.*', (event) => void overWs.push(event.data));
    const sse = reader.sse('order.*', (event) => void overSse.push(event.data));
    await Promise.all([ws.ready, sse.ready]);
    await createClient({ url: live.url, apiKey: KEYS.shop }).publish('order.paid', { id: 'o-1' });
    await eventually(() => overWs.length === 1 && overSse.length === 1, () => `one event each, have ${overWs.length} and ${overSse.length}`);
    await reader.close();
    assert.deepEqual([overWs, overSse], [[{ id: 'o-1' }], [{ id: 'o-1' }]]);
  });

  it('closes a WebSocket subscription with a refused key at once, with BUSBAR_ERR_UNAUTHORIZED and no reconnect loop', async () => {
    const { WebSocket, opened } = countingWebSocket();
    const subscription = createClient({ url: live.url, apiKey: 'wrong-secret-0123456789abcdefgh', WebSocket }).subscribe('order.*', () => {});
    const refusal = await subscription.ready.catch((error: unknown) => error);
    assert.ok(refusal instanceof BusbarError);
    assert.equal(refusal.code, 'BUSBAR_ERR_UNAUTHORIZED');
    assert.equal(subscription.state, 'closed');
    assert.equal(opened(), 1);
  });

  it('closes a subscription outside the key\'s rights with BUSBAR_ERR_FORBIDDEN, over WebSocket and SSE', async () => {
    const reader = createClient({ url: live.url, apiKey: KEYS.dashboard });
    for (const subscription of [reader.subscribe('order.>', () => {}), reader.sse('order.>', () => {})]) {
      const refusal = await subscription.ready.catch((error: unknown) => error);
      assert.ok(refusal instanceof BusbarError, String(refusal));
      assert.equal(refusal.code, 'BUSBAR_ERR_FORBIDDEN');
    }
  });

  it('refuses an SSE stream without a key with BUSBAR_ERR_UNAUTHORIZED', async () => {
    const subscription = createClient({ url: live.url }).sse('order.*', () => {}, { from: 'beginning' });
    await assert.rejects(subscription.ready, (error: unknown) => error instanceof BusbarError && error.code === 'BUSBAR_ERR_UNAUTHORIZED');
  });
});
