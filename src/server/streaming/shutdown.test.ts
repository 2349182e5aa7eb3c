import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openSse, openWs } from './streaming-clients.fixture.ts';
import { startStreamingFixture } from './test-context.fixture.ts';

describe('shutdown', () => {
  it('closes WebSockets with 1001 and ends SSE responses when the app closes', async () => {
    const fixture = await startStreamingFixture();
    try {
      const ws = await openWs(fixture.wsUrl);
      ws.send({ op: 'subscribe', id: 's', topics: ['bye.*'] });
      await ws.next((f) => f.op === 'subscribed');
      const idle = await openWs(fixture.wsUrl);
      const sse = await openSse(`${fixture.baseUrl}/v1/stream?topics=bye.*`);
      await fixture.publishMany(1, 'bye.now');
      await Promise.all([ws.waitForEvents('s', 1), sse.waitFor(1)]);

      const started = Date.now();
      await fixture.app.close();
      assert.ok(Date.now() - started < 1500, 'clients that answer let the server close at once');
      assert.deepEqual(await ws.closed, { code: 1001, reason: 'server shutting down' });
      assert.equal((await idle.closed).code, 1001);
      await sse.ended;
      assert.equal(sse.isEnded, true);
      assert.equal(sse.messages.length, 1, 'the stream ended cleanly after what was sent');
    } finally {
      await fixture.close();
    }
  });

  it('does not wait for ever on a client that stopped reading', async () => {
    const fixture = await startStreamingFixture();
    try {
      const stalled = await openWs(fixture.wsUrl);
      stalled.socket.pause();
      const started = Date.now();
      await fixture.app.close();
      assert.ok(Date.now() - started < 5000, `closed in ${Date.now() - started} ms`);
    } finally {
      await fixture.close();
    }
  });

  it('refuses new SSE and WebSocket connections while closing', async () => {
    const fixture = await startStreamingFixture();
    try {
      const ws = await openWs(fixture.wsUrl);
      ws.socket.pause(); // keeps the close going for the grace period
      const closing = fixture.app.close();
      await new Promise((resolve) => setTimeout(resolve, 50));
      const response = await fetch(`${fixture.baseUrl}/v1/stream`);
      assert.equal(response.status, 503);
      await assert.rejects(openWs(fixture.wsUrl));
      await closing;
    } finally {
      await fixture.close();
    }
  });
});
